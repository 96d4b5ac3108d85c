"""The shopper's cart: finding it for a request, changing its lines, merging it on login, checking it out.

Every change to a cart line goes through CartLine.save()/delete() with a plain integer quantity:
the personalization plugin learns what shoppers put in their carts from those model signals.
"""
import functools
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from personalization import coupons
from shop.models import Cart, CartLine, Order, OrderLine, Product
from shop.signals import order_placed


class CartError(Exception):
    """A change or checkout the store refuses; str() is the message for the shopper."""


class EmptyCart(CartError):
    def __init__(self):
        super().__init__(_("Your cart is empty."))


@dataclass(frozen=True)
class Shortage:
    product: Product
    requested: int
    available: int

    def __str__(self):
        if self.available == 0:
            return _("“%(title)s” is out of stock.") % {"title": self.product.title}
        return _("Only %(available)d of “%(title)s” left in stock.") % {
            "available": self.available,
            "title": self.product.title,
        }


class AlreadyPlaced(CartError):
    """The cart was checked out and has not changed since: a repeated submission of its checkout."""

    def __init__(self, order):
        self.order = order
        super().__init__(_("Your order has already been placed."))


class CouponRejected(CartError):
    """The coupon the shopper gave does not apply to this order; str() says why."""


class OutOfStock(CartError):
    """One or more products cannot be had in the quantity asked for."""

    def __init__(self, shortages):
        self.shortages = list(shortages)
        super().__init__(" ".join(str(shortage) for shortage in self.shortages))


def available_stock(product):
    return product.stock if product.active else 0


def check_stock(product, quantity):
    available = available_stock(product)
    if quantity > available:
        raise OutOfStock([Shortage(product, quantity, available)])


# Finding the cart

def _owner_filter(request, prefix=""):
    """Lookup kwargs selecting the current shopper's cart, or None for a shopper without a session yet."""
    if request.user.is_authenticated:
        return {f"{prefix}user": request.user}
    session_key = request.session.session_key
    if not session_key:
        return None
    return {f"{prefix}session_key": session_key, f"{prefix}user__isnull": True}


def find_cart(request):
    """The current shopper's cart, or None when they have none yet. Never creates one."""
    owner = _owner_filter(request)
    if owner is None:
        return None
    return Cart.objects.filter(**owner).order_by("pk").first()


def get_or_create_cart(request):
    """The current shopper's cart, created (with a session for anonymous shoppers) when missing."""
    if request.user.is_authenticated:
        cart, _created = Cart.objects.get_or_create(user=request.user)
        return cart
    if not request.session.session_key:
        request.session.save()
        # Without this the session middleware would not send the new session's cookie.
        request.session.modified = True
    cart = find_cart(request)
    if cart is None:
        cart = Cart.objects.create(session_key=request.session.session_key)
    return cart


def cart_lines(cart):
    """The cart's lines with their products and categories, in the order they were added."""
    if cart is None:
        return []
    return list(cart.lines.select_related("product__category").order_by("pk"))


def count_items(request):
    """How many items the current shopper's cart holds, in one query (none for a new visitor)."""
    owner = _owner_filter(request, prefix="cart__")
    if owner is None:
        return 0
    return CartLine.objects.filter(**owner).aggregate(items=Sum("quantity"))["items"] or 0


def cart_total(lines):
    return sum((line.subtotal for line in lines), start=Decimal("0.00"))


def cart_categories(lines):
    """The names of the categories of the products in these lines (their categories loaded)."""
    return sorted({line.product.category.name for line in lines})


def coupon_discount(code, user, lines):
    """What coupon `code` takes off these cart lines: a coupons.Discount, or coupons.CouponError saying why not."""
    return coupons.validate(code, user, cart_total(lines), cart_categories(lines))


# Changing the cart

def _touch(cart):
    """Records a change: the cart is no longer the one its last order was placed from."""
    Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now(), placed_order=None)


@transaction.atomic
def add_product(cart, product, quantity):
    """Adds `quantity` of `product`; OutOfStock when the cart would hold more than is in stock.
    The line and the cart's change time are saved together (one commit)."""
    line = cart.lines.filter(product=product).first()
    current = line.quantity if line else 0
    check_stock(product, current + quantity)
    if line is None:
        line = CartLine(cart=cart, product=product, quantity=int(quantity))
        line.save()
    else:
        line.quantity = int(current + quantity)
        line.save(update_fields=["quantity"])
    _touch(cart)
    return line


@transaction.atomic
def set_line_quantity(line, quantity):
    """Sets a line's quantity (its product loaded); 0 removes the line. Returns the line, or None if removed."""
    if quantity == 0:
        remove_line(line)
        return None
    check_stock(line.product, quantity)
    line.quantity = int(quantity)
    line.save(update_fields=["quantity"])
    _touch(line.cart)
    return line


@transaction.atomic
def remove_line(line):
    line.delete()
    _touch(line.cart)


def merge_session_cart(session_key, user):
    """Moves the anonymous cart of `session_key` into `user`'s cart, adding quantities, then deletes it.

    A user without a cart simply takes the anonymous one over. A merged quantity is capped at the
    stock, but never below what the user already had.
    """
    anonymous = Cart.objects.filter(session_key=session_key, user__isnull=True).order_by("pk").first()
    if anonymous is None:
        return None
    with transaction.atomic():
        own = Cart.objects.filter(user=user).first()
        if own is None:
            anonymous.user = user
            anonymous.session_key = ""
            anonymous.save(update_fields=["user", "session_key", "updated_at"])
            return anonymous
        mine = {line.product_id: line for line in own.lines.all()}
        for line in anonymous.lines.select_related("product"):
            existing = mine.get(line.product_id)
            if existing is None:
                line.cart = own
                line.save(update_fields=["cart"])
                continue
            combined = existing.quantity + line.quantity
            existing.quantity = int(min(combined, max(existing.quantity, available_stock(line.product))))
            existing.save(update_fields=["quantity"])
            line.delete()
        anonymous.delete()
        _touch(own)
    return own


# Checking out

def place_order(cart, *, user, full_name, address, coupon_code="", request=None):
    """Turns the cart into an order, decrementing stock and redeeming the coupon, all in one transaction.

    The cart is locked first, so checkouts of one cart run one after the other: a repeated or
    simultaneous one finds the cart empty and raises AlreadyPlaced with the order placed from it.
    Products are locked while their stock is checked and decremented; if any is short, OutOfStock
    is raised and nothing changes. A coupon that does not apply raises CouponRejected, also
    changing nothing; if the coupon service itself fails, the order is placed without a discount.
    `order_placed` is sent once the transaction has committed.
    """
    if cart is None:
        raise EmptyCart()
    with transaction.atomic():
        # The lock is a write, not select_for_update(): PostgreSQL holds the row until commit either way,
        # and SQLite (where select_for_update() does nothing) takes its write lock before anything is read,
        # waiting for another checkout's commit instead of failing on a stale read.
        Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now())
        lines = list(cart.lines.order_by("pk"))
        if not lines:
            placed = Cart.objects.select_related("placed_order").get(pk=cart.pk).placed_order
            raise AlreadyPlaced(placed) if placed else EmptyCart()
        product_ids = sorted({line.product_id for line in lines})
        products = {p.pk: p for p in Product.objects.select_for_update().filter(pk__in=product_ids).order_by("pk")}
        shortages = [
            Shortage(products[line.product_id], line.quantity, available_stock(products[line.product_id]))
            for line in lines
            if line.quantity > available_stock(products[line.product_id])
        ]
        if shortages:
            raise OutOfStock(shortages)

        order = Order.objects.create(
            user=user,
            full_name=full_name,
            address=address,
            total=sum((products[line.product_id].price * line.quantity for line in lines), start=Decimal("0.00")),
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product_id=line.product_id,
                title=products[line.product_id].title,
                quantity=line.quantity,
                unit_price=products[line.product_id].price,
            )
            for line in lines
        )
        for line in lines:
            # The stock condition guards databases where select_for_update() does not lock (SQLite).
            updated = Product.objects.filter(pk=line.product_id, stock__gte=line.quantity).update(
                stock=F("stock") - line.quantity
            )
            if not updated:
                product = products[line.product_id]
                product.refresh_from_db(fields=["stock"])
                raise OutOfStock([Shortage(product, line.quantity, available_stock(product))])
        if coupon_code:
            _redeem_coupon(order, coupon_code, user, product_ids)
        for line in lines:
            line.delete()
        Cart.objects.filter(pk=cart.pk).update(placed_order=order)
        transaction.on_commit(functools.partial(order_placed.send, sender=Order, order=order, request=request))
    return order


def _redeem_coupon(order, code, user, product_ids):
    """Takes the coupon's discount off the order; the coupon is used up only if the order commits."""
    categories = set(Product.objects.filter(pk__in=product_ids).values_list("category__name", flat=True))
    try:
        discount = coupons.redeem(code, user, order.pk, order.total, categories)
    except coupons.CouponUnavailable:
        return  # the plugin failed and logged why: the shopper still gets their order, at full price
    except coupons.CouponError as error:
        raise CouponRejected(str(error)) from error
    order.coupon_code = discount.code
    order.discount = discount.amount
    order.total -= discount.amount
    order.save(update_fields=["coupon_code", "discount", "total"])
