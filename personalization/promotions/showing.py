"""Personalized promotions: which promotion a shopper sees in a slot, and their clicks on it.

`choose(slot, shopper)` takes the slot's running promotions (active, within their schedule), highest
priority first, and serves the first whose audience holds the shopper (services.audiences, as coupon
campaigns are aimed) and whose frequency cap they have not reached. The first time a shopper meets a
promotion, their group is drawn and recorded (PromotionExposure): a keyed hash of the promotion and
the shopper, so it is the same on every visit and nobody can compute it from outside. A held-out
shopper sees nothing in the slot, and their purchases are the baseline the promotion's lift is
measured against (services.promotion_stats).

Each showing is an `impression` event and each click through the promotion's signed link a `click`
event, both recorded through `events` (opt-outs respected) with `data = {"promotion": id, "slot": slot}`;
no client can send such events itself (the API's events endpoint keeps only placement and position).
A click counts only for the shopper the link was made for, once.
"""
import logging
from dataclasses import dataclass

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from personalization import state
from personalization.adapters import get_adapter
from personalization.cache import cache
from personalization.capture import attribution, events, privacy
from personalization.models import Event, EventKind, Promotion, PromotionExposure

logger = logging.getLogger("personalization.promotions")

#: How long a slot's running promotions are cached; saving a promotion clears its slot.
SLOT_CACHE_SECONDS = 60
#: How long an audience's members are cached (computing one reads every purchase, or a model).
AUDIENCE_CACHE_SECONDS = 15 * 60
#: A click link older than this still leads to its target, but records nothing.
CLICK_LINK_SECONDS = attribution.CLICK_LINK_SECONDS
_CLICK_SALT = "personalization.promotion-click"
_HOLDOUT_SALT = "personalization.promotion-holdout"
_EVERYONE = Promotion.Audience.EVERYONE


@dataclass(frozen=True)
class ServedPromotion:
    """A promotion as one shopper is shown it: `click_url` records their click and leads on."""

    promotion: Promotion
    slot: str
    recommendation_id: str
    click_url: str

    @property
    def image_url(self):
        return self.promotion.image.url if self.promotion.image else ""


def shopper_key(shopper):
    return f"u{shopper.user_id}" if shopper.user_id else f"s{shopper.session_key}"


# Choosing ---------------------------------------------------------------------------------------


def running(slot, now=None):
    """The slot's promotions running at `now`, highest priority first (then the newest)."""
    now = now or timezone.now()
    key = Promotion.slot_cache_key(slot)
    found = cache.get(key)
    if found is None:
        found = list(
            Promotion.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now), slot=slot, active=True).order_by(
                "-priority", "-created_at", "-id"
            )
        )
        cache.set(key, found, SLOT_CACHE_SECONDS)
    return [promotion for promotion in found if promotion.is_running(now)]


def audience_members(promotion, now=None):
    """The user ids (text) of the promotion's audience, cached for AUDIENCE_CACHE_SECONDS; None for
    every shopper. An audience that cannot be computed (no active model) is empty, and logged."""
    if promotion.audience == _EVERYONE:
        return None
    key = audience_cache_key(promotion)
    members = cache.get(key)
    if members is None:
        from personalization.serving import audiences  # pandas (and torch): only when an audience is asked

        try:
            members = frozenset(str(user_id) for user_id in audiences.members(promotion, now))
        except audiences.AudienceUnavailable as reason:
            logger.warning("Promotion %s reaches nobody: %s", promotion.pk, reason)
            members = frozenset()
        cache.set(key, members, AUDIENCE_CACHE_SECONDS)
    return members


def audience_cache_key(promotion):
    """Where the promotion's audience is cached: a changed promotion computes its audience anew."""
    return f"personalization:promotion-audience:{promotion.pk}:{promotion.updated_at.timestamp():.6f}"


def is_member(promotion, shopper, now=None):
    """Whether the promotion's audience holds the shopper (anonymous shoppers: only 'every shopper')."""
    members = audience_members(promotion, now)
    return members is None or (bool(shopper.user_id) and str(shopper.user_id) in members)


def in_holdout(promotion, key):
    """Whether the shopper `key` (shopper_key) is held out of `promotion`: the same answer every time,
    true for about `holdout_share` of shoppers, and unpredictable without the site's secret key."""
    digest = salted_hmac(_HOLDOUT_SALT, f"{promotion.pk}:{key}", algorithm="sha256").digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < float(promotion.holdout_share)


def choose(slot, shopper, now=None):
    """The ServedPromotion `shopper` sees in `slot` now, recording the showing; None when nothing is
    for them (or they are held out of the first promotion for them, or opted out)."""
    if not shopper or privacy.is_opted_out(shopper.user_id, shopper.session_key):
        return None
    now = now or timezone.now()
    for promotion in running(slot, now):
        if not is_member(promotion, shopper, now):
            continue
        exposure = _exposure(promotion, shopper, now)
        if exposure.group == PromotionExposure.Group.HOLDOUT:
            return None
        if not _count_showing(exposure, promotion.frequency_cap):
            continue  # shown as often as allowed: the slot's next promotion
        served = _served(promotion, slot, shopper)
        _record(EventKind.IMPRESSION, served, shopper)
        return served
    return None


def choose_for_request(slot, request, now=None):
    """choose() for the shopper of a page's request (a session is created for a new visitor)."""
    return choose(slot, state.shopper_from(request), now)


def _exposure(promotion, shopper, now):
    """The shopper's PromotionExposure, drawn and recorded the first time."""
    key = shopper_key(shopper)
    found = PromotionExposure.objects.filter(promotion=promotion, shopper_key=key).first()
    if found is None and shopper.user_id:  # a session's row that the sign-in moved to the user
        found = PromotionExposure.objects.filter(promotion=promotion, user_id=str(shopper.user_id)).first()
    if found is not None:
        return found
    group = PromotionExposure.Group.HOLDOUT if in_holdout(promotion, key) else PromotionExposure.Group.TREATMENT
    try:
        with transaction.atomic():
            return PromotionExposure.objects.create(
                promotion=promotion,
                shopper_key=key,
                user_id=str(shopper.user_id or ""),
                session_key="" if shopper.user_id else shopper.session_key,
                group=group,
                first_seen=now,
            )
    except IntegrityError:  # another request of the same shopper recorded it first
        return PromotionExposure.objects.get(promotion=promotion, shopper_key=key)


def _count_showing(exposure, cap):
    """Counts one more showing unless the shopper saw it `cap` times (one conditional UPDATE, so two
    requests at once cannot pass the cap); False when capped."""
    rows = PromotionExposure.objects.filter(pk=exposure.pk)
    if cap:
        rows = rows.filter(impressions__lt=cap)
    return rows.update(impressions=F("impressions") + 1) == 1


def _served(promotion, slot, shopper):
    recommendation_id = attribution.new_recommendation_id(shopper)
    token = signing.dumps([promotion.pk, recommendation_id, slot], salt=_CLICK_SALT)
    click_url = reverse("personalization_api:promotion-click", args=[token])
    return ServedPromotion(promotion, slot, recommendation_id, click_url)


def event_product(promotion):
    """What an event of the promotion names as its product: the product it leads to, or "promotion:<id>"."""
    return promotion.product_id or f"promotion:{promotion.pk}"


def _record(kind, served, shopper):
    """Records the impression or click; False when it is not (opted out, or a click already counted)."""
    event = events.NewEvent(
        kind,
        event_product(served.promotion),
        shopper,
        recommendation_id=served.recommendation_id,
        data={"promotion": served.promotion.pk, "slot": served.slot},
    ).counted_once()  # a showing's click counts once: its dedupe key says whether it did
    try:
        if kind == EventKind.CLICK and Event.objects.filter(dedupe_key=event.dedupe_key).exists():
            return False
        return events.bulk_record([event]) == 1
    except Exception:
        logger.exception("Could not record the %s of promotion %s", kind, served.promotion.pk)
        return False


# Clicking ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Click:
    promotion: Promotion
    target: str  # where the link leads
    counted: bool  # recorded as a click


def follow(token, shopper):
    """A click on a promotion's link by `shopper`: the Click, recorded when the link is fresh and was
    made for this shopper (once per showing). Raises signing.BadSignature for a link we did not make,
    Promotion.DoesNotExist when the promotion is gone, LookupError when its target is."""
    try:
        promotion_pk, recommendation_id, slot = signing.loads(token, salt=_CLICK_SALT, max_age=CLICK_LINK_SECONDS)
        fresh = True
    except signing.SignatureExpired:
        promotion_pk, recommendation_id, slot = signing.loads(token, salt=_CLICK_SALT)
        fresh = False
    promotion = Promotion.objects.get(pk=promotion_pk)
    target = target_url(promotion)
    counted = False
    if fresh and shopper and attribution.issued_to(str(recommendation_id), shopper):
        served = ServedPromotion(promotion, str(slot), str(recommendation_id), "")
        counted = _record(EventKind.CLICK, served, shopper)
    return Click(promotion, target, counted)


def target_url(promotion):
    """Where the promotion leads: its product's page as the store gives it now, or its category page."""
    if not promotion.product_id:
        return promotion.category_url
    product = get_adapter().products([promotion.product_id]).get(promotion.product_id)
    url = getattr(product, "url", "") or ""
    if not ((url.startswith("/") and not url.startswith("//")) or url.startswith(("https://", "http://"))):
        raise LookupError(f"promotion {promotion.pk}: product {promotion.product_id} has no page")
    return url


# Shoppers ---------------------------------------------------------------------------------------


def merge_session(session_keys, user):
    """The promotions a shopper met anonymously become the user's on sign-in (where the user has no
    group in that promotion yet; else the user's stays and the session's goes). Never raises."""
    keys = [f"s{key}" for key in set(session_keys) if key]
    if not keys:
        return
    try:
        user_id = str(user.pk)
        sessions = PromotionExposure.objects.filter(shopper_key__in=keys)
        taken = PromotionExposure.objects.filter(user_id=user_id).exclude(shopper_key__in=keys)
        sessions.filter(promotion__in=taken.values("promotion")).delete()
        sessions.update(user_id=user_id, session_key="")
    except Exception:
        logger.exception("Could not move the promotion groups of sessions to user %s", user.pk)


def forget(user_id="", session_key=""):
    """Erases a shopper's promotion records (their groups and showings), and the cached audiences that
    may name them. Returns how many records."""
    if user_id:
        cache.delete_many([audience_cache_key(promotion) for promotion in Promotion.objects.only("pk", "updated_at")])
        mine = Q(user_id=str(user_id)) | Q(shopper_key=f"u{user_id}")
    elif session_key:
        mine = Q(shopper_key=f"s{session_key}", user_id="")
    else:
        return 0
    deleted, _ = PromotionExposure.objects.filter(mine).delete()
    return deleted


__all__ = [
    "ServedPromotion",
    "Click",
    "running",
    "audience_members",
    "is_member",
    "in_holdout",
    "choose",
    "choose_for_request",
    "follow",
    "target_url",
    "event_product",
    "merge_session",
    "forget",
]
