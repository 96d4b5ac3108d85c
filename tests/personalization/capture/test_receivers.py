"""Host signals become events: cart deltas, purchases per order line, stored with the store's transaction."""
from decimal import Decimal

import pytest
from django.test import override_settings

from personalization import state
from personalization.models import Event
from shop.models import CartLine
from shop.signals import order_placed


def kinds_and_quantities():
    return list(Event.objects.order_by("id").values_list("kind", "quantity"))


def test_adding_a_product_to_a_users_cart_records_a_cart_add(user_cart, make_product, django_capture_on_commit_callbacks):
    product = make_product()
    with django_capture_on_commit_callbacks(execute=True):
        CartLine.objects.create(cart=user_cart, product=product, quantity=2)

    event = Event.objects.get()
    assert (event.kind, event.product_id, event.quantity) == ("cart_add", str(product.pk), 2)
    assert event.user_id == str(user_cart.user_id)
    assert event.session_key == ""


def test_changing_quantity_records_the_delta_not_the_new_value(user_cart, make_product, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        line = CartLine.objects.create(cart=user_cart, product=make_product(), quantity=1)
    Event.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        line.quantity = 4
        line.save()
        reloaded = CartLine.objects.get(pk=line.pk)
        reloaded.quantity = 2
        reloaded.save()

    assert kinds_and_quantities() == [("cart_add", 3), ("cart_remove", 2)]


def test_saving_an_unchanged_line_records_nothing(user_cart, make_product, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        line = CartLine.objects.create(cart=user_cart, product=make_product(), quantity=1)
    Event.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        CartLine.objects.get(pk=line.pk).save()

    assert Event.objects.count() == 0


def test_removing_a_line_records_a_cart_remove_of_its_quantity(user_cart, make_product, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        line = CartLine.objects.create(cart=user_cart, product=make_product(), quantity=3)
    Event.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        CartLine.objects.get(pk=line.pk).delete()

    assert kinds_and_quantities() == [("cart_remove", 3)]


def test_an_anonymous_cart_is_recorded_under_its_session_key(session_cart, make_product, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        CartLine.objects.create(cart=session_cart, product=make_product(), quantity=1)

    event = Event.objects.get()
    assert (event.user_id, event.session_key) == ("", session_cart.session_key)


def test_events_are_written_in_the_stores_transaction_and_renew_the_shopper_when_it_commits(
    user_cart, make_product, django_capture_on_commit_callbacks
):
    shopper = state.Shopper(user_id=user_cart.user_id)
    token, _ = state.version_token(shopper)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        CartLine.objects.create(cart=user_cart, product=make_product(), quantity=1)
        assert Event.objects.count() == 1  # no commit of its own: it commits or rolls back with the cart line
        assert state.cached_version(shopper) == token

    for callback in callbacks:
        callback()
    assert Event.objects.count() == 1 and state.cached_version(shopper) != token


def test_an_order_placed_records_one_purchase_per_line(shopper, make_product, place_order, django_capture_on_commit_callbacks):
    apple, bread = make_product(price="1.20"), make_product(price="3.00")
    order = place_order(shopper, [(apple, 2), (bread, 1)])

    with django_capture_on_commit_callbacks(execute=True):
        order_placed.send(sender=type(order), order=order, request=None)

    purchases = Event.objects.filter(kind="purchase")
    assert {(p.product_id, p.quantity, p.unit_price, p.order_id) for p in purchases} == {
        (str(apple.pk), 2, Decimal("1.20"), str(order.pk)),
        (str(bread.pk), 1, Decimal("3.00"), str(order.pk)),
    }
    assert all(p.user_id == str(shopper.pk) for p in purchases)
    assert all(p.created_at == order.placed_at for p in purchases)


def test_recording_an_order_twice_adds_no_duplicates(shopper, make_product, place_order, django_capture_on_commit_callbacks):
    order = place_order(shopper, [(make_product(), 1), (make_product(), 5)])

    with django_capture_on_commit_callbacks(execute=True):
        order_placed.send(sender=type(order), order=order, request=None)
        order.save()
        order_placed.send(sender=type(order), order=order, request=None)

    assert Event.objects.filter(kind="purchase").count() == 2


def test_without_a_custom_signal_the_orders_post_save_records_purchases_once_lines_exist(
    shopper, make_product, place_order, settings, django_capture_on_commit_callbacks
):
    from personalization.capture import receivers

    config = {**settings.PERSONALIZATION, "ORDER_PLACED_SIGNAL": None}
    receivers.disconnect()
    try:
        with override_settings(PERSONALIZATION=config):
            receivers.connect()
            with django_capture_on_commit_callbacks(execute=True):
                order = place_order(shopper, [(make_product(), 1), (make_product(), 2)])
                order.save()  # re-saving the order must not duplicate anything
            assert Event.objects.filter(kind="purchase").count() == 2
            receivers.disconnect()
    finally:
        receivers.connect()


def test_loading_fixtures_records_nothing(shopper, make_product, place_order, django_capture_on_commit_callbacks):
    from personalization.capture.receivers import cart_line_saved

    line = CartLine(cart_id=1, product=make_product(), quantity=3)
    with django_capture_on_commit_callbacks(execute=True):
        cart_line_saved(sender=CartLine, instance=line, raw=True)

    assert Event.objects.count() == 0


def test_a_receiver_that_fails_logs_and_does_not_raise(user_cart, make_product, caplog, monkeypatch):
    from personalization.capture import events

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(events, "record", broken)
    CartLine.objects.create(cart=user_cart, product=make_product(), quantity=1)

    assert "receiver cart_line_saved failed" in caplog.text
    assert CartLine.objects.count() == 1


@pytest.mark.parametrize("kind", ["view", "impression", "click"])
def test_track_records_explicit_events_for_a_user(shopper, make_product, kind, django_capture_on_commit_callbacks):
    import personalization

    product = make_product()
    with django_capture_on_commit_callbacks(execute=True):
        assert personalization.track(shopper, kind, product.pk) is True

    assert Event.objects.get().kind == kind


def test_track_never_raises_on_bad_input(shopper, caplog):
    import personalization

    assert personalization.track(shopper, "teleport", "1") is False
    assert "Could not record teleport" in caplog.text
    assert Event.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_events_of_a_transaction_that_rolls_back_are_never_written(make_product, shopper):
    from django.db import transaction

    from shop.models import Cart

    cart = Cart.objects.create(user=shopper)
    product = make_product()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            CartLine.objects.create(cart=cart, product=product, quantity=1)
            raise RuntimeError("checkout failed")

    assert Event.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_drops_only_its_own_events(make_product, shopper):
    from django.db import transaction

    from shop.models import Cart

    cart = Cart.objects.create(user=shopper)
    kept, dropped = make_product(), make_product()
    with transaction.atomic():
        CartLine.objects.create(cart=cart, product=kept, quantity=1)
        try:
            with transaction.atomic():
                CartLine.objects.create(cart=cart, product=dropped, quantity=1)
                raise RuntimeError("inner failure")
        except RuntimeError:
            pass

    assert list(Event.objects.values_list("product_id", flat=True)) == [str(kept.pk)]


@pytest.mark.django_db(transaction=True)
def test_a_transactions_events_are_written_inside_it_one_insert_per_change(make_product, shopper):
    from django.db import transaction

    from shop.models import Cart

    cart = Cart.objects.create(user=shopper)
    products = [make_product() for _ in range(5)]
    lines = [CartLine(cart=cart, product=product, quantity=1) for product in products]
    with transaction.atomic():
        for line in lines:
            line.save()
    Event.objects.all().delete()

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            for line in lines:
                line.quantity = 3
                line.save()
            assert Event.objects.filter(kind="cart_add", quantity=2).count() == 5  # before the commit

    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "personalization_event"')]
    assert len(inserts) == 5
    assert Event.objects.filter(kind="cart_add", quantity=2).count() == 5


def test_re_recording_a_single_line_order_adds_no_duplicate(shopper, make_product, place_order, django_capture_on_commit_callbacks):
    order = place_order(shopper, [(make_product(), 1)])

    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            order_placed.send(sender=type(order), order=order, request=None)

    assert Event.objects.filter(kind="purchase").count() == 1


NO_SESSION_COLUMN = {"user": "cart__user", "session_key": None, "product": "product", "quantity": "quantity"}


def test_a_cart_without_a_session_column_is_named_by_the_request(
    client, settings, make_product, django_capture_on_commit_callbacks
):
    """Stores like Oscar find an anonymous cart by a cookie: ShopperMiddleware names its shopper."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CART_LINE_FIELDS": NO_SESSION_COLUMN}
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "personalization.middleware.ShopperMiddleware"]
    product = make_product()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/cart/add/{product.pk}/", {"quantity": 2})

    event = Event.objects.get()
    assert (event.kind, event.quantity, event.user_id) == ("cart_add", 2, "")
    assert event.session_key == client.session.session_key != ""


def test_an_ownerless_line_outside_a_request_is_skipped_without_an_error(
    settings, session_cart, make_product, caplog, django_capture_on_commit_callbacks
):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CART_LINE_FIELDS": NO_SESSION_COLUMN}

    with django_capture_on_commit_callbacks(execute=True):
        CartLine.objects.create(cart=session_cart, product=make_product(), quantity=1)

    assert Event.objects.count() == 0
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "WARNING")]


def test_lines_outside_the_cart_line_filter_are_not_the_shoppers_cart(
    settings, user_cart, session_cart, make_product, django_capture_on_commit_callbacks
):
    from personalization.adapters import get_adapter

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CART_LINE_FILTER": {"cart__session_key": ""}}
    kept, ignored = make_product(), make_product()
    with django_capture_on_commit_callbacks(execute=True):
        CartLine.objects.create(cart=user_cart, product=kept, quantity=1)
        line = CartLine.objects.create(cart=session_cart, product=ignored, quantity=1)
        line.quantity = 3
        line.save()
        line.delete()

    assert list(Event.objects.values_list("product_id", flat=True)) == [str(kept.pk)]
    assert [line.product_id for line in get_adapter().cart_lines(user_id=user_cart.user_id)] == [str(kept.pk)]
    assert get_adapter().cart_lines(session_key=session_cart.session_key) == []


@pytest.mark.django_db(transaction=True)
def test_a_checkout_drops_the_cart_removals_recorded_before_its_order(make_product, shopper):
    from django.db import transaction

    from shop.models import Cart, Order

    cart = Cart.objects.create(user=shopper)
    bought, kept = CartLine.objects.create(cart=cart, product=make_product(), quantity=2), make_product()
    with transaction.atomic():
        bought.delete()  # a store that empties the cart before it writes the order
        Order.objects.create(user=shopper, full_name="Ada", address="1 Main St")
        CartLine.objects.create(cart=cart, product=kept, quantity=1)

    assert kinds_and_quantities() == [("cart_add", 2), ("cart_add", 1)]
