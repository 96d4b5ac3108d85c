"""Short handlers from the host's signals to `events`. They never raise into the host store."""
import functools
import logging
from dataclasses import replace

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save

from personalization import state
from personalization.adapters import get_adapter
from personalization.capture import events, privacy
from personalization.experiments import arms as experiments
from personalization.middleware import current_request
from personalization.models import EventKind
from personalization.promotions import showing as promotions
from personalization.serving import erasure
from personalization.signals import shopper_forgotten

logger = logging.getLogger("personalization.capture.receivers")

# The quantity a cart line had when loaded or last saved, kept on the instance to compute deltas.
_BASELINE = "_personalization_quantity"


def never_raise(handler):
    @functools.wraps(handler)
    def guarded(*args, **kwargs):
        try:
            handler(*args, **kwargs)
        except Exception:
            logger.exception("Personalization receiver %s failed; the store carries on", handler.__name__)

    return guarded


@never_raise
def cart_line_loaded(sender, instance, **kwargs):
    setattr(instance, _BASELINE, get_adapter().cart_line_quantity(instance))


def _owned(line):
    """The cart line with its shopper: the line's own, else the shopper of the request being served
    (a cart found by a cookie, as in Oscar). None when nobody can be named (outside a request)."""
    if line.user_id is not None or line.session_key:
        return line
    request = current_request()
    if request is None:
        logger.debug("A change of an ownerless cart line outside a request is not recorded: %s", line)
        return None
    shopper = state.shopper_from(request)
    return replace(line, user_id=shopper.user_id, session_key=shopper.session_key) if shopper else None


@never_raise
def cart_line_saved(sender, instance, raw=False, **kwargs):
    if raw:
        return
    line = get_adapter().cart_line(instance)
    before = getattr(instance, _BASELINE, 0)
    if line is None:  # not (or no longer) an open cart's line
        return
    setattr(instance, _BASELINE, line.quantity)
    delta = line.quantity - before
    line = _owned(line) if delta else None
    if line is not None:
        kind = EventKind.CART_ADD if delta > 0 else EventKind.CART_REMOVE
        events.record(kind, line.product_id, user_id=line.user_id, session_key=line.session_key, quantity=abs(delta))


@never_raise
def cart_line_deleted(sender, instance, **kwargs):
    line = get_adapter().cart_line(instance)
    if line is None:
        return
    quantity = getattr(instance, _BASELINE, line.quantity) or line.quantity
    line = _owned(line) if quantity > 0 else None
    if line is not None:
        events.record(
            EventKind.CART_REMOVE, line.product_id, user_id=line.user_id, session_key=line.session_key, quantity=quantity
        )


def purchase_events(order):
    """One purchase event per order line, keyed by the line so re-recording adds nothing."""
    return [
        events.NewEvent(
            kind=EventKind.PURCHASE,
            product_id=line.product_id,
            shopper=state.Shopper(user_id=line.user_id),
            quantity=line.quantity,
            unit_price=line.unit_price,
            order_id=line.order_id,
            dedupe_key=f"purchase:{line.line_id}",
            created_at=line.ordered_at,
        )
        for line in get_adapter().order_lines(order)
        if line.user_id is not None and line.quantity > 0
    ]


@never_raise
def record_order(order):
    events.bulk_record(purchase_events(order))


@never_raise
def order_placed(sender, raw=False, **kwargs):
    if raw:
        return
    order = get_adapter().order_from_signal(**kwargs)
    if order is not None:
        # For post_save the lines are written after the order, so read them once the transaction commits.
        transaction.on_commit(functools.partial(record_order, order))
        # An order changes stock, often by QuerySet.update(), which sends no signal of its own.
        transaction.on_commit(state.renew_catalog)


@never_raise
def order_saved(sender, instance, created=False, raw=False, **kwargs):
    if created and not raw:
        events.note_checkout(get_adapter().order_user_id(instance))


@never_raise
def shopper_logged_in(sender, request, user, **kwargs):
    if request is None:
        return
    # login() has already cycled the session key; the cookie still holds the anonymous one.
    keys = [request.COOKIES.get(django_settings.SESSION_COOKIE_NAME), getattr(request.session, "session_key", None)]
    events.merge_session(keys, user)
    experiments.merge_session(keys, user)
    promotions.merge_session(keys, user)


@never_raise
def user_deleted(sender, instance, **kwargs):
    privacy.forget(user_id=instance.pk)


@never_raise
def opt_out_saved(sender, instance, **kwargs):
    privacy.opt_out_recorded(instance)


@never_raise
def catalog_changed(sender, **kwargs):
    """A product, or a model its facts are read through, was saved or deleted: the products' facts
    remembered by every process are read again (serving.catalog), now and once the transaction commits."""
    state.renew_catalog()  # for this transaction (its own reads see the change)
    transaction.on_commit(state.renew_catalog)  # for every process, once the change is visible to them


def _catalog_signals(adapter):
    """(signal, sender, dispatch uid) of every change to the adapter's catalog models."""
    return [
        (signal, model, f"personalization.catalog_changed.{model._meta.label}")
        for model in adapter.catalog_models()
        for signal in (post_save, post_delete, m2m_changed)
    ]


def connect():
    """Connects the handlers to the signals the configured adapter names."""
    adapter = get_adapter()
    for signal, model, uid in _catalog_signals(adapter):
        signal.connect(catalog_changed, sender=model, dispatch_uid=uid)
    if adapter.cart_line_model is not None:
        model = adapter.cart_line_model
        post_init.connect(cart_line_loaded, sender=model, dispatch_uid="personalization.cart_line_loaded")
        post_save.connect(cart_line_saved, sender=model, dispatch_uid="personalization.cart_line_saved")
        post_delete.connect(cart_line_deleted, sender=model, dispatch_uid="personalization.cart_line_deleted")
    placed = adapter.order_placed_signal()
    if placed is not None:
        signal, sender = placed
        signal.connect(order_placed, sender=sender, dispatch_uid="personalization.order_placed")
    if adapter.order_model() is not None:
        post_save.connect(order_saved, sender=adapter.order_model(), dispatch_uid="personalization.order_saved")
    user_logged_in.connect(shopper_logged_in, dispatch_uid="personalization.shopper_logged_in")
    post_delete.connect(user_deleted, sender=get_user_model(), dispatch_uid="personalization.user_deleted")
    shopper_forgotten.connect(erasure.forget_cached, dispatch_uid="personalization.forget_cached")


def disconnect():
    """Undoes connect(); used by benchmarks to measure the receivers' cost."""
    adapter = get_adapter()
    for signal, model, uid in _catalog_signals(adapter):
        signal.disconnect(sender=model, dispatch_uid=uid)
    if adapter.cart_line_model is not None:
        model = adapter.cart_line_model
        post_init.disconnect(sender=model, dispatch_uid="personalization.cart_line_loaded")
        post_save.disconnect(sender=model, dispatch_uid="personalization.cart_line_saved")
        post_delete.disconnect(sender=model, dispatch_uid="personalization.cart_line_deleted")
    placed = adapter.order_placed_signal()
    if placed is not None:
        signal, sender = placed
        signal.disconnect(sender=sender, dispatch_uid="personalization.order_placed")
    if adapter.order_model() is not None:
        post_save.disconnect(sender=adapter.order_model(), dispatch_uid="personalization.order_saved")
    user_logged_in.disconnect(dispatch_uid="personalization.shopper_logged_in")
