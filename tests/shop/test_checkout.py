"""Checking out: an order and its lines, stock decremented atomically, order_placed after commit."""
from decimal import Decimal

import pytest
from django.urls import reverse

from shop.models import Cart, CartLine, Order, Product
from shop.signals import order_placed
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

DELIVERY = {"full_name": "Ada Lovelace", "address": "1 Main Street\nLondon"}


@pytest.fixture
def shopper(client):
    user = UserFactory()
    client.force_login(user)
    return user


def fill_cart(user, *products_and_quantities):
    cart, _ = Cart.objects.get_or_create(user=user)
    for product, quantity in products_and_quantities:
        CartLine.objects.create(cart=cart, product=product, quantity=quantity)
    return cart


@pytest.fixture
def placed_orders():
    received = []

    def receiver(sender, order, request, **kwargs):
        received.append((sender, order, request))

    order_placed.connect(receiver, dispatch_uid="tests.shop.placed_orders")
    yield received
    order_placed.disconnect(dispatch_uid="tests.shop.placed_orders")


def test_checkout_requires_logging_in(client):
    response = client.get(reverse("checkout"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_checkout_with_an_empty_cart_sends_the_shopper_back_to_the_cart(client, shopper):
    response = client.get(reverse("checkout"))

    assert response["Location"] == reverse("cart")


def test_checkout_creates_the_order_and_its_lines_and_decrements_stock(client, shopper):
    apple = ProductFactory(title="Apple", price="1.50", stock=10)
    bread = ProductFactory(title="Bread", price="3.00", stock=2)
    fill_cart(shopper, (apple, 3), (bread, 2))

    response = client.post(reverse("checkout"), DELIVERY)

    order = Order.objects.get()
    assert response["Location"] == reverse("order_confirmation", args=[order.pk])
    assert (order.user, order.full_name, order.total) == (shopper, "Ada Lovelace", Decimal("10.50"))
    assert sorted(order.lines.values_list("title", "quantity", "unit_price")) == [
        ("Apple", 3, Decimal("1.50")),
        ("Bread", 2, Decimal("3.00")),
    ]
    assert dict(Product.objects.values_list("title", "stock")) == {"Apple": 7, "Bread": 0}
    assert not CartLine.objects.exists()


def test_checkout_refuses_insufficient_stock_and_changes_nothing(client, shopper):
    apple = ProductFactory(title="Apple", stock=10)
    bread = ProductFactory(title="Bread", stock=1)
    fill_cart(shopper, (apple, 3), (bread, 2))

    response = client.post(reverse("checkout"), DELIVERY, follow=True)

    assert not Order.objects.exists()
    assert dict(Product.objects.values_list("title", "stock")) == {"Apple": 10, "Bread": 1}
    assert CartLine.objects.count() == 2
    assert "Only 1 of “Bread” left in stock." in response.text


def test_checkout_refuses_a_product_taken_off_sale(client, shopper):
    apple = ProductFactory(title="Apple", stock=10)
    fill_cart(shopper, (apple, 1))
    Product.objects.filter(pk=apple.pk).update(active=False)

    response = client.post(reverse("checkout"), DELIVERY, follow=True)

    assert not Order.objects.exists()
    assert "“Apple” is out of stock." in response.text


def test_order_placed_is_sent_only_after_the_transaction_commits(
    client, shopper, placed_orders, django_capture_on_commit_callbacks
):
    fill_cart(shopper, (ProductFactory(), 1))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(reverse("checkout"), DELIVERY)
    assert placed_orders == []

    for callback in callbacks:
        callback()
    [(sender, order, request)] = placed_orders
    assert (sender, order) == (Order, Order.objects.get())
    assert request.user == shopper


def test_checkout_form_is_filled_with_the_last_delivery_details(client, shopper):
    Order.objects.create(user=shopper, full_name="Ada Lovelace", address="1 Main Street")
    fill_cart(shopper, (ProductFactory(), 1))

    response = client.get(reverse("checkout"))

    assert response.context["form"].initial == {"full_name": "Ada Lovelace", "address": "1 Main Street"}


def test_a_repeated_checkout_is_answered_with_the_order_it_placed(client, shopper):
    apple = ProductFactory(title="Apple", stock=10)
    fill_cart(shopper, (apple, 2))
    first = client.post(reverse("checkout"), DELIVERY)

    second = client.post(reverse("checkout"), DELIVERY, follow=True)

    order = Order.objects.get()
    assert first["Location"] == reverse("order_confirmation", args=[order.pk])
    assert second.redirect_chain == [(reverse("order_confirmation", args=[order.pk]), 302)]
    assert "Your order has already been placed." in second.text
    assert Product.objects.get(pk=apple.pk).stock == 8


def test_a_cart_changed_after_its_checkout_is_no_longer_answered_with_that_order(client, shopper):
    apple = ProductFactory(title="Apple", stock=10)
    fill_cart(shopper, (apple, 2))
    client.post(reverse("checkout"), DELIVERY)
    client.post(reverse("cart_add", args=[apple.pk]), {"quantity": 1})
    client.post(reverse("cart_remove", args=[apple.pk]))

    response = client.post(reverse("checkout"), DELIVERY)

    assert response["Location"] == reverse("cart")
    assert Order.objects.count() == 1


def test_a_cart_filled_again_after_its_checkout_places_a_new_order(client, shopper):
    apple = ProductFactory(title="Apple", stock=10)
    fill_cart(shopper, (apple, 2))
    client.post(reverse("checkout"), DELIVERY)
    client.post(reverse("cart_add", args=[apple.pk]), {"quantity": 3})

    response = client.post(reverse("checkout"), DELIVERY)

    latest = Order.objects.order_by("-pk").first()
    assert response["Location"] == reverse("order_confirmation", args=[latest.pk])
    assert [order.lines.get().quantity for order in Order.objects.order_by("pk")] == [2, 3]
    assert Product.objects.get(pk=apple.pk).stock == 5
