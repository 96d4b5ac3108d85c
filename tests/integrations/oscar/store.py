"""Builders of the Oscar test store's catalogue, shoppers and history, on Oscar's own factories,
and the few readings the tests compare: a shopper's cart as their events add it up, as Oscar holds it."""
import itertools
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from django.urls import reverse
from django.utils import timezone
from oscar.apps.catalogue.categories import create_from_breadcrumbs
from oscar.core.loading import get_model
from oscar.test.factories import CountryFactory, UserFactory, create_product

from personalization.models import Event, EventKind

Basket = get_model("basket", "Basket")
Order = get_model("order", "Order")
ProductCategory = get_model("catalogue", "ProductCategory")
StockRecord = get_model("partner", "StockRecord")

PASSWORD = "skelebrain"  # what Oscar's UserFactory sets
SHIPPING_ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "line1": "1 Main Street",
    "line4": "London",
    "postcode": "N1 9GU",
}

_serial = itertools.count(1)


def product(title=None, price="3.00", num_in_stock=20, num_allocated=0, category="Groceries > Dairy", is_public=True):
    """A product with one partner stock record, in the category the breadcrumb names."""
    made = create_product(
        title=title or f"Product {next(_serial)}", price=Decimal(price), num_in_stock=num_in_stock, is_public=is_public
    )
    if num_allocated:
        StockRecord.objects.filter(product=made).update(num_allocated=num_allocated)
    ProductCategory.objects.create(product=made, category=create_from_breadcrumbs(category))
    return made


def shopper(**fields):
    """A customer account; it signs in with its email and PASSWORD."""
    return UserFactory(**fields)


def shipping_country():
    """The one country the store ships to (Oscar then leaves the country out of the address form)."""
    return CountryFactory(iso_3166_1_a2="GB", name="United Kingdom", is_shipping_country=True)


def past_orders(user, baskets, last_days_ago=1, every_days=7):
    """Purchase events as the plugin records them: one order per basket (a list of products), oldest
    first, `every_days` apart, the last one `last_days_ago` days ago."""
    last = timezone.now() - timedelta(days=last_days_ago)
    made = []
    for number, basket in enumerate(baskets):
        order_id = f"history-{user.pk}-{number}"
        made += [
            Event(
                kind=EventKind.PURCHASE,
                user_id=str(user.pk),
                product_id=str(item.pk),
                order_id=order_id,
                quantity=1,
                unit_price=Decimal("3.00"),
                dedupe_key=f"history:{order_id}:{item.pk}",
                created_at=last - timedelta(days=every_days * (len(baskets) - 1 - number)),
            )
            for item in basket
        ]
    Event.objects.bulk_create(made)


# Oscar's pages, as a shopper's browser uses them


def add_to_basket(client, item, quantity=1):
    response = client.post(reverse("basket:add", kwargs={"pk": item.pk}), {"quantity": quantity})
    assert response.status_code == 302, response.content[:500]
    return response


def change_basket_quantities(client, quantities):
    """Submits the basket page's formset with {product: new quantity} (0 removes the line)."""
    page = client.get(reverse("basket:summary"))
    formset = page.context["formset"]
    data = {f"{formset.prefix}-{key}": value for key, value in formset.management_form.initial.items()}
    for number, form in enumerate(formset.forms):
        line = form.instance
        data[f"{formset.prefix}-{number}-id"] = line.pk
        data[f"{formset.prefix}-{number}-quantity"] = quantities.get(line.product, line.quantity)
    response = client.post(reverse("basket:summary"), data)
    assert response.status_code == 302, response.content[:500]
    return response


def sign_in(client, user):
    """Oscar's sign-in form (email and password)."""
    response = client.post(
        reverse("customer:login"),
        {"login-username": user.email, "login-password": PASSWORD, "login_submit": "1"},
    )
    assert response.status_code == 302, response.content[:500]
    return response


def check_out(client):
    """The whole checkout of a signed-in shopper: shipping address, shipping method (Oscar's one free
    method is chosen for them), payment details, preview, place order. Returns the order."""
    client.get(reverse("checkout:index"), follow=True)
    response = client.post(reverse("checkout:shipping-address"), SHIPPING_ADDRESS)
    assert response.status_code == 302 and response.url == reverse("checkout:shipping-method"), response
    response = client.get(reverse("checkout:shipping-method"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("checkout:payment-details"), response.redirect_chain
    response = client.get(reverse("checkout:preview"))
    assert response.status_code == 200
    response = client.post(reverse("checkout:preview"), {"action": "place_order"})
    assert response.status_code == 302 and response.url == reverse("checkout:thank-you"), response
    return Order.objects.latest("pk")


# What the tests compare


def event_cart(**shopper):
    """{product id: quantity} the shopper's cart_add and cart_remove events add up to (user_id= or session_key=)."""
    net = Counter()
    for kind, product_id, quantity in Event.objects.filter(
        kind__in=[EventKind.CART_ADD, EventKind.CART_REMOVE], **shopper
    ).values_list("kind", "product_id", "quantity"):
        net[product_id] += quantity if kind == EventKind.CART_ADD else -quantity
    return {product_id: quantity for product_id, quantity in net.items() if quantity}


def open_basket(**owner):
    """{product id: quantity} of the lines of the open basket Oscar keeps for the owner (owner=user, or pk=)."""
    basket = Basket.open.get(**owner)
    return {str(line.product_id): line.quantity for line in basket.lines.all()}
