"""Oscar's basket pages record the shopper's cart: adds, quantity changes and the merge at sign-in."""
import pytest
from django.urls import reverse
from oscar.apps.basket.middleware import BasketMiddleware

from personalization.models import Event, EventKind
from tests.integrations.oscar import store

pytestmark = pytest.mark.django_db


def test_anonymous_basket_adds_are_cart_add_events_of_the_session(client):
    milk, bread = store.product(title="Milk"), store.product(title="Bread")

    store.add_to_basket(client, milk, quantity=2)
    store.add_to_basket(client, bread)
    store.add_to_basket(client, milk)

    session_key = client.session.session_key
    assert session_key
    adds = Event.objects.filter(kind=EventKind.CART_ADD).order_by("pk")
    assert [(e.product_id, e.quantity, e.session_key, e.user_id or "") for e in adds] == [
        (str(milk.pk), 2, session_key, ""),
        (str(bread.pk), 1, session_key, ""),
        (str(milk.pk), 1, session_key, ""),
    ]
    assert store.event_cart(session_key=session_key) == store.open_basket(owner=None) == {
        str(milk.pk): 3,
        str(bread.pk): 1,
    }


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_quantity_changes_on_the_basket_page_keep_the_event_cart_equal_to_the_basket(client, signed_in):
    user = store.shopper()
    if signed_in:
        client.force_login(user)
    milk, bread, eggs = store.product(title="Milk"), store.product(title="Bread"), store.product(title="Eggs")
    store.add_to_basket(client, milk, quantity=2)
    store.add_to_basket(client, bread, quantity=3)
    store.add_to_basket(client, eggs)

    store.change_basket_quantities(client, {milk: 5, bread: 1, eggs: 0})

    shopper = {"user_id": str(user.pk)} if signed_in else {"session_key": client.session.session_key}
    basket = store.open_basket(owner=user if signed_in else None)
    assert basket == {str(milk.pk): 5, str(bread.pk): 1}
    assert store.event_cart(**shopper) == basket


def test_signing_in_gives_the_anonymous_events_to_the_user_and_the_merged_basket_is_the_event_cart(client):
    user = store.shopper()
    milk, bread = store.product(title="Milk"), store.product(title="Bread")
    store.add_to_basket(client, milk, quantity=2)
    store.add_to_basket(client, bread)
    anonymous_key = client.session.session_key

    store.sign_in(client, user)
    client.get(reverse("basket:summary"))  # Oscar merges the cookie basket at the first page that reads the basket

    assert Event.objects.filter(session_key=anonymous_key, user_id__in=["", None]).count() == 0
    assert set(Event.objects.values_list("user_id", flat=True)) == {str(user.pk)}
    assert store.open_basket(owner=user) == {str(milk.pk): 2, str(bread.pk): 1}
    assert store.event_cart(user_id=str(user.pk)) == store.open_basket(owner=user)


@pytest.mark.parametrize(
    "in_user_basket, in_cookie_basket, merged",
    [(1, 3, 3), (4, 2, 4)],
    ids=["cookie-basket-holds-more", "user-basket-holds-more"],
)
def test_when_both_baskets_hold_a_product_the_event_cart_is_oscars_merge(
    client, in_user_basket, in_cookie_basket, merged
):
    """Oscar's BasketMiddleware merges with add_quantities=False: the larger quantity stays."""
    user = store.shopper()
    milk, bread, eggs = store.product(title="Milk"), store.product(title="Bread"), store.product(title="Eggs")
    client.force_login(user)
    store.add_to_basket(client, milk, quantity=in_user_basket)
    store.add_to_basket(client, eggs)
    client.logout()
    store.add_to_basket(client, milk, quantity=in_cookie_basket)
    store.add_to_basket(client, bread, quantity=2)

    store.sign_in(client, user)
    client.get(reverse("basket:summary"))

    assert store.open_basket(owner=user) == {str(milk.pk): merged, str(eggs.pk): 1, str(bread.pk): 2}
    assert store.event_cart(user_id=str(user.pk)) == store.open_basket(owner=user)
    assert not Event.objects.filter(user_id__in=["", None]).exists()


class AddingBasketMiddleware(BasketMiddleware):
    """A store that merges baskets at sign-in by adding quantities (Oscar keeps the larger)."""

    def merge_baskets(self, master, slave):
        master.merge(slave, add_quantities=True)


def test_a_store_that_adds_quantities_at_sign_in_keeps_the_event_cart_equal_to_the_basket(client, settings):
    oscars = "oscar.apps.basket.middleware.BasketMiddleware"
    settings.MIDDLEWARE = [f"{__name__}.AddingBasketMiddleware" if m == oscars else m for m in settings.MIDDLEWARE]
    user = store.shopper()
    milk, bread = store.product(title="Milk"), store.product(title="Bread")
    client.force_login(user)
    store.add_to_basket(client, milk, quantity=2)
    client.logout()
    store.add_to_basket(client, milk, quantity=3)
    store.add_to_basket(client, bread)

    store.sign_in(client, user)
    client.get(reverse("basket:summary"))

    assert store.open_basket(owner=user) == {str(milk.pk): 5, str(bread.pk): 1}
    assert store.event_cart(user_id=str(user.pk)) == store.open_basket(owner=user)
