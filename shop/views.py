"""The store's pages."""
import hashlib

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Q, Subquery, Sum, Window
from django.db.models.functions import RowNumber
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from personalization import coupons
from shop import cart as shop_cart
from shop.forms import MAX_QUANTITY, AddToCartForm, CartLineForm, CheckoutForm, CouponForm
from shop.images import product_svg
from shop.models import CartLine, Category, Order, OrderLine, Product

PRODUCTS_PER_PAGE = 24
FEATURED_PER_CATEGORY = 4
#: Category shelves on the home page at most (the category bar lists them all).
HOME_SHELVES = 12


def storefront():
    """Active products with their categories: what shoppers may see."""
    return Product.objects.filter(active=True).select_related("category")


def units_sold():
    """How many of the product have been ordered, as a subquery (None when never ordered)."""
    per_product = OrderLine.objects.filter(product=OuterRef("pk")).values("product")
    return Subquery(per_product.annotate(units=Sum("quantity")).values("units"))


def redirect_back(request, fallback):
    """Redirects to the form's `next` when it is a safe local address, else to `fallback`."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


# Catalog

def home(request):
    """The hero and, per category, its best-selling products."""
    ranked = (
        storefront()
        .annotate(sold=units_sold())
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=F("category_id"),
                order_by=[F("sold").desc(nulls_last=True), F("title").asc()],
            )
        )
        .filter(rank__lte=FEATURED_PER_CATEGORY)
        .order_by("category__name", "rank")
    )
    shelves = {}
    for product in ranked:
        shelves.setdefault(product.category, []).append(product)
    # The aisles that sell most (by their featured products), so a large catalog keeps a short home page.
    sales = {category: sum(p.sold or 0 for p in products) for category, products in shelves.items()}
    busiest = sorted(shelves, key=lambda category: (-sales[category], category.name))[:HOME_SHELVES]
    return render(request, "shop/home.html", {"shelves": [(category, shelves[category]) for category in busiest]})


def category_detail(request, slug):
    category = get_object_or_404(Category, slug=slug)
    products = storefront().filter(category=category)
    page = Paginator(products, PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "shop/category.html", {"category": category, "page": page, "products": page.object_list})


def product_detail(request, slug):
    product = get_object_or_404(storefront(), slug=slug)
    return render(request, "shop/product.html", {"product": product, "form": AddToCartForm()})


@require_GET
def product_image(request, slug):
    """The product's drawn image; browsers and proxies may keep it for a day and revalidate by ETag."""
    product = get_object_or_404(Product.objects.select_related("category"), slug=slug)
    svg = product_svg(product.title, product.category.colour)
    etag = '"%s"' % hashlib.sha256(svg.encode()).hexdigest()[:32]
    response = get_conditional_response(request, etag=etag) or HttpResponse(svg, content_type="image/svg+xml")
    response.headers["ETag"] = etag
    # The SVG is data, never a document that runs scripts, even when opened on its own.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    patch_cache_control(response, public=True, max_age=60 * 60 * 24)
    return response


def search(request):
    query = request.GET.get("q", "").strip()
    products = Product.objects.none()
    if query:
        products = storefront().filter(
            Q(title__icontains=query) | Q(description__icontains=query) | Q(category__name__icontains=query)
        )
    page = Paginator(products, PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "shop/search.html", {"query": query, "page": page, "products": page.object_list})


# Cart

def cart_detail(request):
    lines = shop_cart.cart_lines(shop_cart.find_cart(request))
    item_count = sum(line.quantity for line in lines)
    context = {"lines": lines, "total": shop_cart.cart_total(lines), "item_count": item_count, "cart_count": item_count}
    return render(request, "shop/cart.html", context)


@require_POST
def cart_add(request, product_id):
    product = get_object_or_404(storefront(), pk=product_id)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please choose a quantity between 1 and %(max)d.") % {"max": MAX_QUANTITY})
        return redirect_back(request, product)
    quantity = form.cleaned_data["quantity"]
    try:
        shop_cart.add_product(shop_cart.get_or_create_cart(request), product, quantity)
    except shop_cart.CartError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Added %(quantity)d × “%(title)s” to your cart.") % {"quantity": quantity, "title": product.title},
        )
    return redirect_back(request, product)


def _cart_line_or_404(request, product_id):
    cart = shop_cart.find_cart(request)
    return get_object_or_404(CartLine.objects.select_related("product", "cart"), cart=cart, product_id=product_id)


@require_POST
def cart_update(request, product_id):
    line = _cart_line_or_404(request, product_id)
    form = CartLineForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please choose a quantity between 0 and %(max)d.") % {"max": MAX_QUANTITY})
        return redirect("cart")
    try:
        updated = shop_cart.set_line_quantity(line, form.cleaned_data["quantity"])
    except shop_cart.CartError as error:
        messages.error(request, str(error))
    else:
        if updated is None:
            messages.success(request, _("Removed “%(title)s” from your cart.") % {"title": line.product.title})
        else:
            messages.success(request, _("Updated “%(title)s” in your cart.") % {"title": line.product.title})
    return redirect("cart")


@require_POST
def cart_remove(request, product_id):
    line = _cart_line_or_404(request, product_id)
    shop_cart.remove_line(line)
    messages.success(request, _("Removed “%(title)s” from your cart.") % {"title": line.product.title})
    return redirect("cart")


# Checkout and orders

@login_required
def checkout(request):
    """Delivery details and a coupon; "apply" only checks the coupon, "place order" places the order."""
    cart = shop_cart.find_cart(request)
    lines = shop_cart.cart_lines(cart)
    applying = "apply_coupon" in request.POST
    if request.method == "POST" and request.POST.get("coupon_code", "").strip() and _too_many_coupon_tries(request):
        form, coupon_form = CheckoutForm(initial=request.POST.dict()), CouponForm(initial=request.POST.dict())
        wait = _("You have tried too many coupon codes; please wait a few minutes and try again.")
        return _checkout_page(request, form, coupon_form, lines, coupon_error=wait)
    if request.method == "POST" and not applying:
        form, coupon_form = CheckoutForm(request.POST), CouponForm(request.POST)
        if form.is_valid() and coupon_form.is_valid():
            code = coupon_form.cleaned_data["coupon_code"]
            try:
                order = shop_cart.place_order(
                    cart, user=request.user, request=request, coupon_code=code, **form.cleaned_data
                )
            except shop_cart.AlreadyPlaced as repeated:
                messages.info(request, str(repeated))
                return redirect("order_confirmation", pk=repeated.order.pk)
            except shop_cart.CouponRejected as error:
                return _checkout_page(request, form, coupon_form, lines, coupon_error=str(error))
            except shop_cart.CartError as error:
                messages.error(request, _("We could not place your order: %(reason)s") % {"reason": error})
                return redirect("cart")
            if code and not order.coupon_code:
                messages.warning(
                    request, _("We could not apply your coupon, so your order was placed without a discount.")
                )
            return redirect("order_confirmation", pk=order.pk)
    elif applying:
        # Only the coupon is being checked: keep the delivery details as typed, without judging them yet.
        form, coupon_form = CheckoutForm(initial=request.POST.dict()), CouponForm(request.POST)
    else:
        previous = request.user.orders.only("full_name", "address").first()
        if previous:
            initial = {"full_name": previous.full_name, "address": previous.address}
        else:
            initial = {"full_name": request.user.get_full_name()}
        form = CheckoutForm(initial=initial)
        offered = coupons.coupon_for(request.user, shop_cart.cart_total(lines)) if lines else None
        coupon_form = CouponForm(initial={"coupon_code": offered.code if offered else ""})
    if not lines:
        messages.info(request, _("Your cart is empty."))
        return redirect("cart")
    return _checkout_page(request, form, coupon_form, lines)


#: Coupon codes one account may try at checkout per window (seconds), as the API's coupon check allows:
#: unguessable codes stay unguessable when nobody can try thousands.
COUPON_TRIES, COUPON_TRY_SECONDS = 10, 10 * 60


def _too_many_coupon_tries(request):
    """Counts this typed code; True once the account has tried more than COUPON_TRIES in the window."""
    key = f"shop:coupon-tries:{request.user.pk}"
    try:
        cache.add(key, 0, COUPON_TRY_SECONDS)
        return cache.incr(key) > COUPON_TRIES
    except Exception:  # no cache, no limit: checkout goes on
        return False


def _checkout_page(request, form, coupon_form, lines, coupon_error=""):
    """The checkout page, with the coupon's discount taken off the total when the code applies."""
    if coupon_form.is_bound:
        code = coupon_form.cleaned_data["coupon_code"] if coupon_form.is_valid() else ""
    else:
        code = coupon_form.initial.get("coupon_code", "")
    discount = None
    if code and not coupon_error:
        try:
            discount = shop_cart.coupon_discount(code, request.user, lines)
        except coupons.CouponError as error:
            if coupon_form.is_bound:
                coupon_error = str(error)
            else:  # the shopper's own coupon, offered: not for this cart, so not filled in
                coupon_form.initial["coupon_code"] = ""
    subtotal = shop_cart.cart_total(lines)
    context = {
        "form": form,
        "coupon_form": coupon_form,
        "coupon_error": coupon_error,
        "discount": discount,
        "lines": lines,
        "subtotal": subtotal,
        "total": subtotal - (discount.amount if discount else 0),
    }
    return render(request, "shop/checkout.html", context)


def _own_order_or_404(request, pk):
    return get_object_or_404(
        Order.objects.filter(user=request.user).prefetch_related("lines__product"), pk=pk
    )


@login_required
def order_confirmation(request, pk):
    return render(request, "shop/order_confirmation.html", {"order": _own_order_or_404(request, pk)})


@login_required
def order_history(request):
    orders = request.user.orders.annotate(item_count=Sum("lines__quantity")).order_by("-placed_at", "-pk")
    page = Paginator(orders, 20).get_page(request.GET.get("page"))
    return render(request, "shop/order_history.html", {"page": page, "orders": page.object_list})


@login_required
def order_detail(request, pk):
    return render(request, "shop/order_detail.html", {"order": _own_order_or_404(request, pk)})


# Accounts

def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    if request.method == "POST":
        form = UserCreationForm(request.POST)
        if form.is_valid():
            user = form.save()
            login(request, user)
            messages.success(request, _("Welcome, %(username)s! Your account is ready.") % {"username": user.username})
            return redirect_back(request, reverse("home"))
    else:
        form = UserCreationForm()
    next_url = request.POST.get("next") or request.GET.get("next", "")
    return render(request, "registration/signup.html", {"form": form, "next": next_url})
