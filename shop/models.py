"""The demo store's catalog, carts and orders."""
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy as _


class Category(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    # Colour of the category's drawn product images, as a CSS hex colour.
    colour = models.CharField(_("colour"), max_length=7, default="#6b8e23")

    class Meta:
        ordering = ["name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("category", args=[self.slug])


class Product(models.Model):
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products", verbose_name=_("category"))
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField(_("stock"), default=0)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["title"]
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("product", args=[self.slug])

    @property
    def in_stock(self):
        return self.active and self.stock > 0


class Cart(models.Model):
    """A shopper's cart: owned by a user, or by a session key while the shopper is anonymous."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="cart",
        verbose_name=_("user"),
    )
    session_key = models.CharField(_("session key"), max_length=40, blank=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The order the cart's lines became, until the cart changes again: a repeated checkout is answered with it.
    placed_order = models.ForeignKey(
        "Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("placed order")
    )

    class Meta:
        verbose_name = _("cart")
        verbose_name_plural = _("carts")

    def __str__(self):
        return gettext("Cart %(number)s") % {"number": self.pk}

    @property
    def total(self):
        return sum((line.subtotal for line in self.lines.all()), Decimal("0.00"))

    @property
    def item_count(self):
        return sum(line.quantity for line in self.lines.all())


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines", verbose_name=_("cart"))
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+", verbose_name=_("product"))
    quantity = models.PositiveIntegerField(_("quantity"), default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cart", "product"], name="one_line_per_product")]
        verbose_name = _("cart line")
        verbose_name_plural = _("cart lines")

    @property
    def subtotal(self):
        return self.product.price * self.quantity


class Order(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="orders", verbose_name=_("user")
    )
    placed_at = models.DateTimeField(_("placed at"), auto_now_add=True, db_index=True)
    # What the shopper pays: the lines' subtotals less the coupon's discount.
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    coupon_code = models.CharField(_("coupon code"), max_length=32, blank=True)
    discount = models.DecimalField(_("discount"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    # Delivery details captured at checkout.
    full_name = models.CharField(_("full name"), max_length=200)
    address = models.TextField(_("address"))

    class Meta:
        ordering = ["-placed_at"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self):
        return gettext("Order #%(number)s") % {"number": self.pk}

    def get_absolute_url(self):
        return reverse("order_detail", args=[self.pk])

    @property
    def subtotal(self):
        """The lines' value before the coupon's discount."""
        return self.total + self.discount


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product"))
    title = models.CharField(_("title"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")

    @property
    def subtotal(self):
        return self.unit_price * self.quantity
