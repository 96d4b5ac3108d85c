import itertools
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from shop.models import Cart, CartLine, Category, Order, OrderLine, Product

_serial = itertools.count(1)


@pytest.fixture
def model_files(settings, tmp_path):
    """Model artifacts stored in a fresh folder, none loaded in this process before or after."""
    from personalization import registry

    settings.MEDIA_ROOT = tmp_path
    registry.forget_loaded()
    yield
    registry.forget_loaded()


@pytest.fixture
def trained(db):
    """A tiny store (tests/personalization/stores.py) with both networks trained and active."""
    from tests.personalization.stores import build_store, train_and_activate

    store = build_store()
    train_and_activate()
    return store


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


@pytest.fixture
def celery_eager(settings):
    """Tasks run in the test's own process when they are queued, and their errors are raised. The
    tasks are registered first, so that those queued by name (signatures) run here too, whatever ran before."""
    import personalization.tasks  # noqa: F401

    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


@pytest.fixture
def broker_down(settings, monkeypatch):
    """The Celery broker is a closed port on this host: queueing a task fails as with a broker that is down."""
    import socket

    from celery import current_app

    with socket.socket() as probe:  # a port nothing listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setenv("CELERY_BROKER_URL", settings.CELERY_BROKER_URL)  # Celery prefers it to the setting
    monkeypatch.setattr(current_app, "_pool", None)  # connections made to the former broker
    monkeypatch.setattr(current_app.amqp, "_producer_pool", None)
    return settings.CELERY_BROKER_URL
