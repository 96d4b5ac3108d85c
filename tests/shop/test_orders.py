"""Order history and detail show a shopper their own orders only."""
import pytest
from django.urls import reverse

from shop.models import Order, OrderLine
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def order_for(user):
    product = ProductFactory()
    order = Order.objects.create(user=user, full_name="Ada", address="1 Main Street", total=product.price)
    OrderLine.objects.create(order=order, product=product, title=product.title, quantity=1, unit_price=product.price)
    return order


def test_order_history_lists_only_the_shoppers_own_orders(client):
    me, someone = UserFactory(), UserFactory()
    mine = order_for(me)
    order_for(someone)
    client.force_login(me)

    response = client.get(reverse("order_history"))

    assert list(response.context["orders"]) == [mine]


def test_order_detail_shows_the_shoppers_own_order(client):
    me = UserFactory()
    order = order_for(me)
    client.force_login(me)

    response = client.get(order.get_absolute_url())

    assert response.status_code == 200
    assert order.lines.get().title in response.text


@pytest.mark.parametrize("url_name", ["order_detail", "order_confirmation"])
def test_someone_elses_order_is_not_found(client, url_name):
    order = order_for(UserFactory())
    client.force_login(UserFactory())

    response = client.get(reverse(url_name, args=[order.pk]))

    assert response.status_code == 404


def test_order_history_requires_logging_in(client):
    assert client.get(reverse("order_history"))["Location"].startswith(reverse("login"))
