"""Coupons at the demo store's checkout: shown, applied, redeemed with the order, never breaking it."""
import logging
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from personalization.coupons import codes as coupon_service
from personalization.models import Coupon, CouponCampaign
from shop.models import Cart, CartLine, Order, Product
from tests.factories import ProductFactory, UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory

pytestmark = pytest.mark.django_db

DELIVERY = {"full_name": "Ada Lovelace", "address": "1 Main Street\nLondon"}


@pytest.fixture
def shopper(client):
    user = UserFactory()
    client.force_login(user)
    return user


@pytest.fixture
def cart(shopper):
    """Three apples at 4.00 and a loaf at 8.00: 20.00 in all."""
    apple = ProductFactory(title="Apple", price=Decimal("4.00"), stock=10, category__name="Fruit")
    bread = ProductFactory(title="Bread", price=Decimal("8.00"), stock=5, category__name="Bakery")
    cart = Cart.objects.create(user=shopper)
    CartLine.objects.create(cart=cart, product=apple, quantity=3)
    CartLine.objects.create(cart=cart, product=bread, quantity=1)
    return cart


@pytest.fixture
def coupon(shopper):
    """10% off for this shopper."""
    return CouponFactory(user=shopper, campaign=CouponCampaignFactory(discount_value=Decimal("10")))


def place(client, code, **extra):
    return client.post(reverse("checkout"), {**DELIVERY, "coupon_code": code, **extra})


def test_the_checkout_page_offers_the_shoppers_coupon_with_its_discount(client, cart, coupon):
    page = client.get(reverse("checkout")).content.decode()

    assert f'value="{coupon.code}"' in page
    assert "Coupon applied: $2.00 off." in page
    assert "Place order · $18.00" in page


def test_applying_a_coupon_shows_the_discount_and_places_nothing(client, cart, coupon):
    response = client.post(reverse("checkout"), {"coupon_code": coupon.code.lower(), "apply_coupon": "1"})

    page = response.content.decode()
    assert response.status_code == 200
    assert f"Coupon {coupon.code}" in page
    assert "−$2.00" in page
    assert "This field is required" not in page  # the delivery details are not judged yet
    assert not Order.objects.exists()
    coupon.refresh_from_db()
    assert coupon.status == "issued"


@pytest.mark.parametrize("code", ["NOTACODE2345", "x" * 40])
def test_applying_a_wrong_code_says_so_without_failing(client, cart, code):
    response = client.post(reverse("checkout"), {"coupon_code": code, "apply_coupon": "1"})

    assert response.status_code == 200
    assert "We do not know this coupon code" in response.content.decode()


def test_a_code_longer_than_the_field_is_a_form_error(client, cart):
    response = client.post(reverse("checkout"), {"coupon_code": "x" * 200, "apply_coupon": "1"})

    assert response.status_code == 200
    assert "Ensure this value has at most 40 characters" in response.content.decode()


def test_placing_the_order_redeems_the_coupon_and_the_order_keeps_code_discount_and_total(client, cart, coupon):
    response = place(client, coupon.code)

    order = Order.objects.get()
    assert response["Location"] == reverse("order_confirmation", args=[order.pk])
    assert (order.coupon_code, order.discount, order.total, order.subtotal) == (
        coupon.code,
        Decimal("2.00"),
        Decimal("18.00"),
        Decimal("20.00"),
    )
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_id, coupon.discount) == ("redeemed", str(order.pk), Decimal("2.00"))
    assert CouponCampaign.objects.get().spent == Decimal("2.00")


def test_the_order_pages_show_the_coupon_and_discount(client, cart, coupon):
    place(client, coupon.code)
    order = Order.objects.get()

    for page in (reverse("order_detail", args=[order.pk]), reverse("order_confirmation", args=[order.pk])):
        html = client.get(page).content.decode()
        assert f"Coupon {coupon.code}" in html
        assert "−$2.00" in html
        assert "$20.00" in html and "$18.00" in html


def test_a_coupon_cannot_be_used_for_a_second_order(client, shopper, cart, coupon):
    place(client, coupon.code)
    second_cart = Cart.objects.get(user=shopper)
    CartLine.objects.create(cart=second_cart, product=Product.objects.get(title="Apple"), quantity=1)

    response = place(client, coupon.code)

    assert response.status_code == 200
    assert "This coupon has already been used." in response.content.decode()
    assert Order.objects.count() == 1
    assert CartLine.objects.filter(cart=second_cart).count() == 1


def test_another_shoppers_coupon_places_no_order_and_changes_nothing(client, cart):
    theirs = CouponFactory(user=UserFactory())

    response = place(client, theirs.code)

    assert response.status_code == 200
    assert "We do not know this coupon code" in response.content.decode()
    assert not Order.objects.exists()
    assert dict(Product.objects.values_list("title", "stock")) == {"Apple": 10, "Bread": 5}
    assert CartLine.objects.count() == 2


def test_an_order_that_fails_does_not_use_up_the_coupon(client, cart, coupon):
    Product.objects.filter(title="Bread").update(stock=0)

    response = place(client, coupon.code)

    assert response["Location"] == reverse("cart")
    assert not Order.objects.exists()
    coupon.refresh_from_db()
    assert (coupon.status, coupon.redeemed_at) == ("issued", None)
    assert CouponCampaign.objects.get().spent == Decimal("0")


def test_a_coupon_for_other_categories_is_refused_at_checkout(client, cart, shopper):
    dairy = CouponFactory(user=shopper, campaign=CouponCampaignFactory(categories="Dairy"))

    response = place(client, dairy.code)

    assert "This coupon is for carts with a product from: Dairy." in response.content.decode()
    assert not Order.objects.exists()


def test_an_order_without_a_coupon_has_no_discount(client, cart):
    place(client, "")

    order = Order.objects.get()
    assert (order.coupon_code, order.discount, order.total) == ("", Decimal("0.00"), Decimal("20.00"))


def test_a_failing_coupon_service_does_not_stop_the_order(client, cart, coupon, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("coupon database on fire")

    monkeypatch.setattr(coupon_service, "redeem", broken)

    with caplog.at_level(logging.ERROR, logger="personalization.coupons"):
        response = place(client, coupon.code)

    order = Order.objects.get()
    assert response["Location"] == reverse("order_confirmation", args=[order.pk])
    assert (order.coupon_code, order.discount, order.total) == ("", Decimal("0.00"), Decimal("20.00"))
    assert "coupon database on fire" in caplog.text
    messages = [str(m) for m in response.wsgi_request._messages]
    assert "We could not apply your coupon, so your order was placed without a discount." in messages


def test_a_coupon_service_failing_in_the_database_leaves_the_orders_transaction_usable(
    client, cart, coupon, monkeypatch
):
    """On PostgreSQL a failed statement aborts the whole transaction unless it ran in a savepoint."""

    def broken(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_coupon_table")

    monkeypatch.setattr(coupon_service, "redeem", broken)

    response = place(client, coupon.code)

    order = Order.objects.get()
    assert response["Location"] == reverse("order_confirmation", args=[order.pk])
    assert order.total == Decimal("20.00")
    assert not CartLine.objects.exists()


def test_a_failing_coupon_check_still_lets_the_shopper_see_the_checkout(client, cart, coupon, monkeypatch):
    monkeypatch.setattr(coupon_service, "validate", lambda *args, **kwargs: 1 / 0)
    monkeypatch.setattr(coupon_service, "coupon_for", lambda *args, **kwargs: 1 / 0)

    page = client.post(reverse("checkout"), {"coupon_code": coupon.code, "apply_coupon": "1"})
    offered = client.get(reverse("checkout"))

    assert page.status_code == offered.status_code == 200
    assert "Coupons cannot be checked right now" in page.content.decode()
    assert Coupon.objects.get().status == "issued"


def test_the_shoppers_coupon_is_not_filled_in_when_the_cart_is_too_small_for_it(client, cart, shopper):
    coupon = CouponFactory(user=shopper, campaign=CouponCampaignFactory(min_cart_total=Decimal("50.00")))

    page = client.get(reverse("checkout")).content.decode()

    assert coupon.code not in page
    assert "Place order · $20.00" in page
    assert "errorlist" not in page


def test_an_account_that_tries_too_many_coupon_codes_is_asked_to_wait(client, cart, coupon):
    tried = [
        client.post(reverse("checkout"), {"coupon_code": f"NOTACODE{n:04d}", "apply_coupon": "1"}).content.decode()
        for n in range(10)
    ]
    assert all("We do not know this coupon code" in page for page in tried)

    page = client.post(reverse("checkout"), {"coupon_code": coupon.code, "apply_coupon": "1"}).content.decode()

    assert "tried too many coupon codes" in page and "−$2.00" not in page  # not even a right one is checked
