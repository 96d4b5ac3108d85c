"""Shoppers' privacy: opt-out, erasure and retention."""
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from personalization.cache import cache
from personalization.conf import settings
from personalization.models import Coupon, CouponAssignment, Event, ExperimentExposure, OptOut
from personalization.signals import shopper_forgotten

_CACHE_SECONDS = 300
#: A `cached` argument saying the caller read the key and found nothing.
NOT_CACHED = object()


def _cache_key(user_id, session_key):
    return f"personalization:optout:u{user_id}" if user_id else f"personalization:optout:s{session_key}"


def opt_out_cache_key(user_id=None, session_key=""):
    """The cache key of is_opted_out's answer (for callers reading several keys at once)."""
    return _cache_key(user_id, session_key)


def is_opted_out(user_id=None, session_key="", *, cached=None):
    """True when this shopper asked not to be tracked or personalized (cached briefly).

    `cached`: the value already read from the cache under opt_out_cache_key (None: read it here;
    NOT_CACHED: it was read and is not there)."""
    if not user_id and not session_key:
        return False
    key = _cache_key(user_id, session_key)
    answer = None if cached is NOT_CACHED else cached if cached is not None else cache.get(key)
    if answer is None:
        owner = {"user__pk": user_id} if user_id else {"session_key": session_key}
        try:
            answer = OptOut.objects.filter(**owner).exists()
        except (TypeError, ValueError):  # a shopper key that is not a user primary key has no account
            answer = False
        cache.set(key, answer, _CACHE_SECONDS)
    return answer


def opted_out_users(user_ids):
    """The ids, as strings, of the signed-in shoppers among `user_ids` who opted out (one query)."""
    try:
        found = OptOut.objects.filter(user__pk__in=list(user_ids)).values_list("user_id", flat=True)
        return {str(pk) for pk in found}
    except (TypeError, ValueError):  # keys that are not user primary keys: asked one by one
        return {str(user_id) for user_id in user_ids if is_opted_out(user_id)}


def opt_out(user=None, session_key=""):
    """Stops tracking and personalization for a shopper and erases what was recorded about them."""
    with transaction.atomic():
        owner = {"user": user} if user is not None else {"session_key": session_key}
        _, created = OptOut.objects.get_or_create(**owner)
        if not created:  # a new row is erased by opt_out_recorded
            forget(user=user, session_key=session_key)
    cache.set(_cache_key(getattr(user, "pk", None), session_key), True, _CACHE_SECONDS)


def opt_out_recorded(opt_out_row):
    """What a saved OptOut means at once, however it was made (opt_out, the admin, a shell): the
    shopper's answer is cached and they are forgotten, in the database and (on commit) in the cache,
    where their version token is renewed, so that nothing cached for them before is served again."""
    from personalization import events

    user_id, session_key = opt_out_row.user_id, opt_out_row.session_key or ""
    cache.set(_cache_key(user_id, session_key), True, _CACHE_SECONDS)
    forget(user_id=user_id, session_key=session_key)
    events.renew_shopper_versions([(user_id, session_key)])  # at once, not only on commit


def opt_in(user=None, session_key=""):
    """Undoes opt_out: tracking and personalization resume from now on."""
    owner = {"user": user} if user is not None else {"session_key": session_key}
    OptOut.objects.filter(**owner).delete()
    cache.delete(_cache_key(getattr(user, "pk", None), session_key))


def forget(user=None, session_key="", user_id=None):
    """Erases a shopper: their events, their unused coupons, coupon-campaign assignments and experiment
    exposures (a redeemed coupon stays for the books, without the shopper), and, once committed, every
    copy the cache holds (shopper_forgotten). Returns the number of events deleted."""
    from personalization import events

    user_id = user_id or getattr(user, "pk", None)
    if not user_id and not session_key:
        raise ValueError("forget() needs a user or a session key")
    session_key = "" if user_id else session_key
    version = cache.get(events.shopper_version_key(events.Shopper(user_id, session_key)))  # what their copies are under
    with transaction.atomic():
        if user_id:
            deleted, _ = Event.objects.filter(user_id=str(user_id)).delete()
            coupons = Coupon.objects.filter(user_id=user_id)
            coupons.filter(status=Coupon.Status.REDEEMED).update(user=None)
            coupons.delete()
            CouponAssignment.objects.filter(user_id=user_id).delete()
            ExperimentExposure.objects.filter(user_id=str(user_id)).delete()
            ExperimentExposure.objects.filter(shopper_key=f"u{user_id}").delete()
        else:
            deleted, _ = Event.objects.filter(session_key=session_key, user_id="").delete()
            ExperimentExposure.objects.filter(shopper_key=f"s{session_key}", user_id="").delete()
        forgotten = {"user_id": str(user_id or ""), "session_key": session_key, "version": version}
        transaction.on_commit(lambda: shopper_forgotten.send(sender=forget, **forgotten))
    return deleted


def purge_expired_events(now=None):
    """Deletes events older than RETENTION_DAYS. Returns the number deleted (0 when retention is off)."""
    days = settings.RETENTION_DAYS
    if days is None:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = Event.objects.filter(created_at__lt=cutoff).delete()
    return deleted
