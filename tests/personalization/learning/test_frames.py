"""Purchases in the database become the order-line frame the models read."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from personalization.learning.frames import PURCHASE_COLUMNS, purchase_frame
from personalization.models import Event
from tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def purchase(user_id, order_id, product_id, category="", days_ago=1, price="2.00"):
    return Event.objects.create(
        kind="purchase",
        user_id=user_id,
        order_id=order_id,
        product_id=str(product_id),
        category=category,
        quantity=2,
        unit_price=Decimal(price),
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def test_purchases_of_signed_in_shoppers_become_order_lines_in_import_format():
    purchase("7", "A", "100", category="Fruit")
    purchase("7", "A", "101", category="Dairy")
    Event.objects.create(kind="cart_add", user_id="7", product_id="102")
    Event.objects.create(kind="purchase", session_key="anon", product_id="103", order_id="Z")

    frame = purchase_frame(chunk_size=1)  # several chunks

    assert list(frame.columns) == PURCHASE_COLUMNS
    assert sorted(frame["product_id"].astype(str)) == ["100", "101"]
    assert set(frame["category"].astype(str)) == {"Fruit", "Dairy"}
    assert frame["quantity"].tolist() == [2, 2]
    assert frame["price"].tolist() == [2.0, 2.0]


def test_live_purchases_take_their_category_from_the_store():
    product = ProductFactory(category=CategoryFactory(name="Bakery", slug="bakery"))
    purchase("7", "A", product.pk)

    assert purchase_frame()["category"].astype(str).tolist() == ["Bakery"]


def test_since_limits_the_window_and_no_purchases_give_an_empty_frame():
    purchase("7", "A", "100", days_ago=30)

    assert purchase_frame(since=timezone.now() - timedelta(days=7)).empty
    assert len(purchase_frame()) == 1
