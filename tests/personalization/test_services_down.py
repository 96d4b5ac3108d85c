"""With the cache server or the Celery broker unreachable (real clients pointed at closed ports),
carts and checkout work, every event is stored, the pages render and the API answers with valid, if
less personal, responses: the cache only ever spares work, and capture never queues a task."""
import logging

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from personalization.models import Event, EventKind, OptOut, Placement
from shop.models import Order
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

UNREACHABLE = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}


@pytest.fixture
def cache_down(settings, caplog, monkeypatch):
    settings.CACHES = UNREACHABLE
    monkeypatch.setattr("personalization.cache.LOG_EVERY_SECONDS", 0)  # each test sees its own log line
    caplog.set_level(logging.ERROR, logger="personalization.cache")
    return caplog


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Runs a request's on-commit work (the events' write) when it ends, as a real commit would."""

    def run(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


@pytest.mark.parametrize("service_down", ["cache_down", "broker_down"])
def test_carts_checkout_and_views_are_recorded_while_a_service_is_down(client, service_down, request, committed):
    request.getfixturevalue(service_down)
    user, product = UserFactory(), ProductFactory(stock=5)

    anonymous_view = committed(client.get, product.get_absolute_url())
    anonymous_add = committed(client.post, reverse("cart_add", args=[product.pk]), {"quantity": 1})
    client.force_login(user)
    added = committed(client.post, reverse("cart_add", args=[product.pk]), {"quantity": 2})
    placed = committed(client.post, reverse("checkout"), {"full_name": "Ada Lovelace", "address": "1 Main St"})

    assert anonymous_view.status_code == 200
    assert anonymous_add.status_code == added.status_code == placed.status_code == 302
    order = Order.objects.get()
    recorded = list(Event.objects.order_by("id").values_list("kind", "quantity", "order_id"))
    assert recorded == [("view", 1, ""), ("cart_add", 1, ""), ("cart_add", 2, ""), ("purchase", 2, str(order.pk))]


def test_a_failing_cache_is_logged(client, cache_down):
    client.get(reverse("personalization:privacy"))

    assert "The cache is failing" in cache_down.text


def test_the_pages_and_the_privacy_choice_work_while_the_cache_is_down(client, cache_down, committed):
    user = UserFactory()
    client.force_login(user)

    home = client.get(reverse("home"))
    privacy = client.get(reverse("personalization:privacy"))
    chosen = committed(client.post, reverse("personalization:privacy"), {"choice": "opt_out"})

    assert home.status_code == privacy.status_code == 200
    assert chosen.status_code == 302 and OptOut.objects.filter(user=user).exists()


def test_the_api_answers_popular_products_while_the_cache_is_down(trained, cache_down, committed):
    Placement.objects.create(slug="down-for-you", name="For you", strategy=Placement.Strategy.FOR_YOU, limit=3)
    shopper = trained.shoppers["dairy"][0]
    signed_in, anonymous = APIClient(), APIClient()
    signed_in.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=shopper).key}")
    url = reverse("personalization_api:recommendations")

    for client in (signed_in, anonymous):
        response = committed(client.get, url, {"placement": "down-for-you"})
        assert response.status_code == 200, response.content
        assert len(response.json()["items"]) == 3
    event = committed(anonymous.post, reverse("personalization_api:events"),
                      {"kind": "view", "product": trained.product("Milk").pk}, format="json")  # fmt: skip
    assert event.status_code == 202
    assert Event.objects.filter(kind=EventKind.VIEW).count() == 1
    assert committed(anonymous.get, reverse("personalization_api:schema")).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_event_written_over_a_dropped_database_connection_is_stored_on_a_new_one(caplog):
    """The server ends the web process's connection (a restart, a proxy's idle timeout) just before
    an event is written: the write opens a new connection and the event is stored."""
    import os

    import psycopg
    from django.db import connection

    from personalization.capture import events

    if connection.vendor != "postgresql":
        message = "needs PostgreSQL (DATABASE_URL=postgres://...) to drop a connection from the server's side"
        if os.environ.get("PERSONALIZATION_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    product = ProductFactory()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("host", "port", "user", "dbname", "password")}) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

    assert events.record(EventKind.VIEW, product.pk, session_key="dropped-connection")

    assert Event.objects.filter(kind=EventKind.VIEW, session_key="dropped-connection").count() == 1
    assert "recording the events on a new one" in caplog.text
