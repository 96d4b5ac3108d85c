"""A signed-in shopper's whole checkout through Oscar's views is recorded as purchases, once."""
import pytest
from oscar.apps.order.signals import order_placed

from personalization.adapters import get_adapter
from personalization.models import Event, EventKind
from tests.integrations.oscar import store

pytestmark = pytest.mark.django_db


@pytest.fixture
def ordered(client):
    """A shopper who put two products in the basket and went through Oscar's checkout."""
    store.shipping_country()
    user = store.shopper()
    milk, bread = store.product(title="Milk", price="1.20"), store.product(title="Bread", price="2.50")
    client.force_login(user)
    store.add_to_basket(client, milk, quantity=3)
    store.add_to_basket(client, bread)
    order = store.check_out(client)
    return user, order


def test_a_checkout_records_one_purchase_per_order_line(ordered):
    user, order = ordered

    purchases = Event.objects.filter(kind=EventKind.PURCHASE)
    assert sorted((e.product_id, e.quantity, e.unit_price, e.order_id, e.user_id) for e in purchases) == sorted(
        (str(line.product_id), line.quantity, line.unit_price_incl_tax, str(order.pk), str(user.pk))
        for line in order.lines.all()
    )
    assert order.lines.count() == 2


def test_sending_order_placed_again_records_nothing_more(ordered, django_capture_on_commit_callbacks):
    user, order = ordered
    before = Event.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        order_placed.send(sender=None, order=order, user=user)

    assert Event.objects.count() == before


def test_after_checkout_the_shoppers_cart_is_empty(ordered):
    """Oscar keeps the submitted basket's lines; they are an order now, not the cart."""
    user, order = ordered

    assert order.basket.lines.count() == 2  # what Oscar keeps
    assert list(get_adapter().cart_lines(user_id=user.pk)) == []
    assert not Event.objects.filter(kind=EventKind.CART_REMOVE).exists()  # bought, not taken out
