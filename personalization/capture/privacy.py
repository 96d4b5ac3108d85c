"""Shoppers' privacy: opt-out, erasure and retention."""
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from personalization import state
from personalization.conf import settings
from personalization.models import Coupon, CouponAssignment, Event, ExperimentExposure, OptOut
from personalization.signals import shopper_forgotten


def is_opted_out(user_id=None, session_key=""):
    """True when this shopper asked not to be tracked or personalized (the answer cached briefly)."""
    return state.is_opted_out(user_id, session_key)


def opted_out_users(user_ids):
    """The ids, as strings, of the signed-in shoppers among `user_ids` who opted out (one query)."""
    try:
        found = OptOut.objects.filter(user__pk__in=list(user_ids)).values_list("user_id", flat=True)
        return {str(pk) for pk in found}
    except (TypeError, ValueError):  # keys that are not user primary keys: asked one by one
        return {str(user_id) for user_id in user_ids if state.is_opted_out(user_id)}


def opt_out(user=None, session_key=""):
    """Stops tracking and personalization for a shopper and erases what was recorded about them."""
    with transaction.atomic():
        owner = {"user": user} if user is not None else {"session_key": session_key}
        _, created = OptOut.objects.get_or_create(**owner)
        if not created:  # a new row is erased by opt_out_recorded
            forget(user=user, session_key=session_key)
    state.remember_opt_out(getattr(user, "pk", None), session_key, True)


def opt_out_recorded(opt_out_row):
    """What a saved OptOut means at once, however it was made (opt_out, the admin, a shell): the
    shopper's answer is cached and they are forgotten, in the database and (on commit) in the cache,
    where their version token is renewed, so that nothing cached for them before is served again."""
    user_id, session_key = opt_out_row.user_id, opt_out_row.session_key or ""
    state.remember_opt_out(user_id, session_key, True)
    forget(user_id=user_id, session_key=session_key)
    state.renew_versions([(user_id, session_key)])  # at once, not only on commit


def opt_in(user=None, session_key=""):
    """Undoes opt_out: tracking and personalization resume from now on."""
    owner = {"user": user} if user is not None else {"session_key": session_key}
    OptOut.objects.filter(**owner).delete()
    state.drop_opt_out(getattr(user, "pk", None), session_key)


def forget(user=None, session_key="", user_id=None):
    """Erases a shopper: their events, their unused coupons, coupon-campaign assignments and experiment
    exposures (a redeemed coupon stays for the books, without the shopper), and, once committed, every
    copy the cache holds (shopper_forgotten). Returns the number of events deleted."""
    user_id = user_id or getattr(user, "pk", None)
    if not user_id and not session_key:
        raise ValueError("forget() needs a user or a session key")
    session_key = "" if user_id else session_key
    version = state.cached_version(state.Shopper(user_id, session_key))  # what their copies are under
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
