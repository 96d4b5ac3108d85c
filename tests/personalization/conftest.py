import itertools
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from shop.models import Cart, CartLine, Category, Order, OrderLine, Product

_serial = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_product(db):
    def make(stock=10, price="2.50", category="Fruit", **fields):
        n = next(_serial)
        cat, _ = Category.objects.get_or_create(name=category, defaults={"slug": category.lower()})
        return Product.objects.create(
            title=fields.pop("title", f"Product {n}"),
            slug=f"product-{n}",
            category=cat,
            price=Decimal(price),
            stock=stock,
            **fields,
        )

    return make


@pytest.fixture
def shopper(db):
    return get_user_model().objects.create_user(username=f"shopper{next(_serial)}", password="a-long-pass-phrase")


@pytest.fixture
def place_order():
    """Creates an order with lines the way a checkout does, and returns it."""

    def place(user, products_and_quantities):
        order = Order.objects.create(user=user, full_name="Ada", address="1 Main St")
        for product, quantity in products_and_quantities:
            OrderLine.objects.create(
                order=order, product=product, title=product.title, quantity=quantity, unit_price=product.price
            )
        return order

    return place


@pytest.fixture
def user_cart(shopper):
    return Cart.objects.create(user=shopper)


@pytest.fixture
def session_cart(db):
    return Cart.objects.create(session_key="anon-session-key-0001")


__all__ = ["CartLine"]
