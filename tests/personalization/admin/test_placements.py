"""Shop owners see the event log in the admin; it is read-only and names the products."""
import pytest
from django.contrib.auth import get_user_model

from personalization.models import Event
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    admin = get_user_model().objects.create_superuser("owner", "owner@example.com", "a-long-pass-phrase")
    client.force_login(admin)
    return client


def test_the_event_list_names_each_product(staff_client):
    product = ProductFactory(title="Organic Fuji Apples 1kg")
    Event.objects.create(kind="cart_add", product_id=str(product.pk), user_id="7", quantity=2)

    response = staff_client.get("/admin/personalization/event/")

    assert response.status_code == 200
    assert f"Organic Fuji Apples 1kg (#{product.pk})" in response.content.decode()


def test_events_cannot_be_added_or_edited_in_the_admin(staff_client):
    event = Event.objects.create(kind="view", product_id="1", user_id="7")

    assert staff_client.get("/admin/personalization/event/add/").status_code == 403
    assert staff_client.post(f"/admin/personalization/event/{event.pk}/change/", {"kind": "purchase"}).status_code == 403
    event.refresh_from_db()
    assert event.kind == "view"


def test_shoppers_cannot_see_the_event_log(client):
    shopper = get_user_model().objects.create_user("shopper", password="a-long-pass-phrase")
    client.force_login(shopper)

    assert client.get("/admin/personalization/event/").status_code == 302
