"""Recording shopper events: validated, deduplicated, written inside the surrounding transaction (stored or
rolled back with it), or at once outside one.

Receivers and `personalization.track()` come through here. Writing never raises into the host:
a failed write is logged with the events it could not store.
"""
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from personalization import state
from personalization.cache import cache
from personalization.capture import attribution, commit_batches, privacy
from personalization.conf import settings
from personalization.models import Event, EventKind, EventSource
from personalization.state import Shopper, shopper_from

logger = logging.getLogger("personalization.capture.events")

KINDS = frozenset(EventKind.values)
#: Kinds that change what a shopper is recommended; impressions and clicks do not.
SHAPING_KINDS = frozenset({EventKind.VIEW, EventKind.CART_ADD, EventKind.CART_REMOVE, EventKind.PURCHASE})


class InvalidEvent(ValueError):
    """An event that cannot be recorded as given; the message says which field and why."""


@dataclass
class NewEvent:
    kind: str
    product_id: str
    shopper: Shopper
    quantity: int = 1
    unit_price: Decimal | None = None
    order_id: str = ""
    recommendation_id: str = ""
    category: str = ""
    dedupe_key: str | None = None
    source: str = EventSource.LIVE
    data: dict = field(default_factory=dict)
    created_at: datetime | None = None

    def validate(self):
        if self.kind not in KINDS:
            raise InvalidEvent(f"kind: {self.kind!r} is not one of {', '.join(sorted(KINDS))}")
        if self.product_id in (None, ""):
            raise InvalidEvent("product_id: required")
        self.product_id = str(self.product_id)
        if len(self.product_id) > 64:
            raise InvalidEvent("product_id: at most 64 characters")
        if not self.shopper:
            raise InvalidEvent("shopper: an event needs a user or a session key")
        try:
            self.quantity = int(self.quantity)
        except (TypeError, ValueError):
            raise InvalidEvent(f"quantity: {self.quantity!r} is not a whole number") from None
        if self.quantity <= 0:
            raise InvalidEvent("quantity: must be positive (removals are their own kind)")
        if self.unit_price is not None:
            try:
                self.unit_price = Decimal(str(self.unit_price))
            except InvalidOperation:
                raise InvalidEvent(f"unit_price: {self.unit_price!r} is not a number") from None
        return self

    def counted_once(self):
        """A click or an impression counts once per shopper, recommendation and product: sending it
        again (a replayed link, a script) adds nothing to anybody's figures."""
        if self.kind in (EventKind.CLICK, EventKind.IMPRESSION) and self.recommendation_id and self.dedupe_key is None:
            who = f"u{self.shopper.user_id}" if self.shopper.user_id else f"s{self.shopper.session_key}"
            digest = hashlib.sha1(f"{who}:{self.recommendation_id}:{self.product_id}".encode()).hexdigest()
            self.dedupe_key = f"{self.kind}:{digest}"
        return self

    def to_model(self):
        return Event(
            kind=self.kind,
            product_id=self.product_id,
            user_id=str(self.shopper.user_id or ""),
            session_key="" if self.shopper.user_id else self.shopper.session_key,
            quantity=self.quantity,
            unit_price=self.unit_price,
            order_id=str(self.order_id or ""),
            recommendation_id=self.recommendation_id or "",
            category=self.category or "",
            dedupe_key=self.dedupe_key,
            source=self.source,
            data=self.data or {},
            created_at=self.created_at or timezone.now(),
        )


def record(kind, product_id, *, user_id=None, session_key="", **fields):
    """Records one event (with the surrounding transaction). Returns False when it is not recorded
    (opt-out, switched off, a repeated view); raises InvalidEvent for input that can never be recorded."""
    return bulk_record([NewEvent(kind, product_id, Shopper(user_id, session_key or ""), **fields)]) == 1


def bulk_record(new_events):
    """Records many events in one write (with the surrounding transaction); returns how many were accepted."""
    if not settings.RECORD_EVENTS:
        return 0
    return _on_a_live_connection(_accept_and_write, new_events)


def _accept_and_write(new_events):
    accepted, opted_out = [], {}  # asked once per shopper (a page's impressions are one shopper's)
    for event in new_events:
        event.validate()
        owner = (event.shopper.user_id, event.shopper.session_key)
        if owner not in opted_out:
            opted_out[owner] = privacy.is_opted_out(*owner)
        if opted_out[owner]:
            continue
        if event.kind == EventKind.VIEW and not _first_view_in_window(event):
            continue
        accepted.append(event.counted_once().to_model())
    if accepted:
        attribution.attribute(accepted)
        _store(accepted)
    return len(accepted)


def _store(models):
    """Stores the events now. Inside a transaction they are written in a savepoint of it, so they
    are stored or rolled back with it and cost it no commit of its own; the shoppers' version tokens
    are renewed when it commits (commit_batches). A checkout's cart removals are not kept."""
    batch = commit_batches.pending(_committed)
    if batch is None:
        _write(models)
        return
    kept = [event for event in models if not _bought(event, batch.checkout_users)]
    if not kept:
        return
    try:
        with transaction.atomic(savepoint=True):  # a failure leaves the store's transaction usable
            _insert(kept)
    except Exception:
        _log_lost(kept)
        return
    batch.events.extend(kept)


def note_checkout(user_id):
    """Marks the current transaction as this shopper's checkout: the cart lines it deletes were
    bought, not taken out, so their cart_remove events are not kept (those recorded before the
    order are deleted again, in the same transaction)."""
    batch = commit_batches.pending(_committed)
    if batch is None or user_id is None:
        return
    user = str(user_id)
    batch.checkout_users.add(user)
    bought = [event for event in batch.events if _bought(event, batch.checkout_users)]
    if not bought:
        return
    try:
        with transaction.atomic(savepoint=True):
            Event.objects.filter(
                kind=EventKind.CART_REMOVE,
                user_id=user,
                product_id__in={event.product_id for event in bought},
                created_at__in={event.created_at for event in bought},
            ).delete()
    except Exception:
        logger.exception("Could not drop the cart removals of the checkout of user %s", user)
        return
    batch.events = [event for event in batch.events if event not in bought]


def _bought(event, checkout_users):
    return event.kind == EventKind.CART_REMOVE and event.user_id in checkout_users


def _committed(batch):
    """A transaction that wrote events committed: what was cached for their shoppers is stale."""
    _renew_shoppers(batch.events)


def _first_view_in_window(event):
    seconds = settings.VIEW_DEDUPE_SECONDS
    if not seconds:
        return True
    return cache.add(state.view_key(event.shopper, event.product_id), 1, seconds)


def _write(events):
    """Stores the events; never raises (what could not be stored is logged)."""
    try:
        _on_a_live_connection(_insert, events)
    except Exception:
        _log_lost(events)
        return
    _renew_shoppers(events)


def _renew_shoppers(events):
    """What was cached for the shoppers of stored events that shape recommendations is stale now."""
    state.renew_versions({(e.user_id, e.session_key) for e in events if e.kind in SHAPING_KINDS})


def _on_a_live_connection(work, *args):
    """work(*args), once more on a new database connection when the one it used turned out dead (a
    restarted server, a proxy closing idle connections) and no transaction of the caller is open."""
    try:
        return work(*args)
    except (OperationalError, InterfaceError) as exc:
        if commit_batches.in_transaction():
            raise
        logger.warning("The database connection failed (%s); recording the events on a new one", exc)
        transaction.get_connection().close()
        return work(*args)


def _insert(events):
    if len(events) == 1 and events[0].dedupe_key is None:
        # One plain INSERT is one round trip; bulk_create() adds BEGIN and COMMIT around it.
        events[0].save(force_insert=True)
    else:
        Event.objects.bulk_create(events, ignore_conflicts=True)


def _log_lost(events):
    logger.exception(
        "Could not store %d event(s): %s",
        len(events),
        [(e.kind, e.product_id, e.user_id, e.session_key, e.quantity, e.dedupe_key) for e in events],
    )


def record_for(request_or_user, kind, product_id, quantity=1, **fields):
    """`personalization.track()`: records for the shopper behind a request or user; never raises."""
    try:
        shopper = shopper_from(request_or_user)
        return bulk_record([NewEvent(kind, product_id, shopper, quantity=quantity, **fields)]) == 1
    except Exception:
        logger.exception("Could not record %s of product %s", kind, product_id)
        return False


def merge_session(session_keys, user):
    """Attaches an anonymous shopper's events to the user who just logged in.

    A session that opted out passes its choice on to the user; events of a user who opted out
    are erased instead of merged.
    """
    keys = [key for key in set(session_keys) if key]
    if not keys:
        return 0
    anonymous = Event.objects.filter(session_key__in=keys, user_id="")
    if any(privacy.is_opted_out(session_key=key) for key in keys) and not privacy.is_opted_out(user_id=user.pk):
        privacy.opt_out(user=user)
    if privacy.is_opted_out(user_id=user.pk):
        anonymous.delete()
        return 0
    merged = anonymous.update(user_id=str(user.pk), session_key="")
    state.renew_versions([(str(user.pk), "")] + [(None, key) for key in keys])
    attribution.merge(keys, user.pk)
    return merged
