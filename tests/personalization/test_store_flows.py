"""The plugin inside the demo store, through its real pages: views, carts, login and checkout."""
import pytest
from django.urls import reverse

from personalization.models import Event
from shop.models import Order
from tests.factories import PASSWORD, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_product_page_records_a_view_for_an_anonymous_shopper(client, django_capture_on_commit_callbacks):
    product = ProductFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(product.get_absolute_url())

    assert response.status_code == 200
    view = Event.objects.get()
    assert (view.kind, view.product_id, view.session_key) == ("view", str(product.pk), client.session.session_key)


def test_an_anonymous_shoppers_events_join_the_user_on_login(client, django_capture_on_commit_callbacks):
    user, product = UserFactory(), ProductFactory()
    with django_capture_on_commit_callbacks(execute=True):
        client.get(product.get_absolute_url())
        client.post(reverse("cart_add", args=[product.pk]), {"quantity": 2})
    anonymous_key = client.session.session_key
    assert set(Event.objects.values_list("session_key", flat=True)) == {anonymous_key}

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("login"), {"username": user.username, "password": PASSWORD})

    assert client.session.session_key != anonymous_key  # login cycled the session
    assert list(Event.objects.order_by("id").values_list("kind", "user_id", "session_key")) == [
        ("view", str(user.pk), ""),
        ("cart_add", str(user.pk), ""),
    ]


def test_a_signed_in_checkout_records_cart_adds_and_purchases(client, django_capture_on_commit_callbacks):
    user, product = UserFactory(), ProductFactory(stock=5)
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("cart_add", args=[product.pk]), {"quantity": 3})
        response = client.post(reverse("checkout"), {"full_name": "Ada Lovelace", "address": "1 Main St"})

    order = Order.objects.get()
    assert response.status_code == 302
    assert list(Event.objects.order_by("id").values_list("kind", "quantity", "order_id")) == [
        ("cart_add", 3, ""),
        ("purchase", 3, str(order.pk)),
    ]


def test_the_privacy_page_opts_a_shopper_out_and_erases_their_events(client, django_capture_on_commit_callbacks):
    user, product = UserFactory(), ProductFactory()
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("cart_add", args=[product.pk]), {"quantity": 1})

    response = client.post(reverse("personalization:privacy"), {"choice": "opt_out"})
    with django_capture_on_commit_callbacks(execute=True):
        client.get(product.get_absolute_url())

    assert response.status_code == 302
    assert Event.objects.count() == 0
    assert "Turn personalization on" in client.get(reverse("personalization:privacy")).content.decode()


def break_recording_in_the_receiver(monkeypatch, explode):
    monkeypatch.setattr("personalization.capture.events.bulk_record", explode)


def break_writing_to_the_database(monkeypatch, explode):
    monkeypatch.setattr(Event, "save", explode)
    monkeypatch.setattr(Event.objects, "bulk_create", explode)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("break_recording", [break_recording_in_the_receiver, break_writing_to_the_database])
def test_cart_and_checkout_succeed_when_recording_raises(client, monkeypatch, caplog, break_recording):
    """Real commits (a transactional test): a failing recorder must not cost the shop an order."""
    user, product = UserFactory(), ProductFactory(stock=5)
    client.force_login(user)

    def explode(*args, **kwargs):
        raise RuntimeError("recording is down")

    break_recording(monkeypatch, explode)
    added = client.post(reverse("cart_add", args=[product.pk]), {"quantity": 2})
    placed = client.post(reverse("checkout"), {"full_name": "Ada Lovelace", "address": "1 Main St"})

    order = Order.objects.get()
    assert added.status_code == placed.status_code == 302
    assert placed.url == reverse("order_confirmation", args=[order.pk])
    assert order.lines.get().quantity == 2
    product.refresh_from_db()
    assert product.stock == 3
    assert "recording is down" in caplog.text
