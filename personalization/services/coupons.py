"""Personalized coupons: choosing who gets one, issuing, checking and redeeming them.

Limits hold under concurrency: a coupon is redeemed by one conditional UPDATE (only while it is
still unused), and a campaign's `spent` grows by one conditional UPDATE (only while
`spent + discount <= budget`), both in the caller's transaction, so an order that fails leaves the
coupon unused. A holdout share of each campaign's audience, drawn deterministically per shopper,
gets no coupon and is recorded as such.
"""
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization import privacy
from personalization.models import Coupon, CouponAssignment, CouponCampaign, OptOut

logger = logging.getLogger("personalization.coupons")

#: Letters and digits that cannot be mistaken for one another (no 0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
#: 12 characters of 31: about 59 bits, far beyond guessing.
CODE_LENGTH = 12
_LOOKUP_CHUNK = 500


# Errors a shopper sees ------------------------------------------------------------------------


class CouponError(Exception):
    """A coupon that cannot be used as asked; `str()` is the message for the shopper, `code` stable."""

    code = "invalid"
    default_detail = gettext_lazy("This coupon code is not valid.")

    def __init__(self, detail=None):
        self.detail = str(detail or self.default_detail)
        super().__init__(self.detail)


class UnknownCoupon(CouponError):
    code = "unknown"
    default_detail = gettext_lazy("We do not know this coupon code. Please check it and try again.")


class NotYourCoupon(UnknownCoupon):
    """Another shopper's code: answered exactly as an unknown one, so nobody can probe for codes."""


class CouponUsed(CouponError):
    code = "used"
    default_detail = gettext_lazy("This coupon has already been used.")


class CouponExpired(CouponError):
    code = "expired"
    default_detail = gettext_lazy("This coupon has expired.")


class OfferEnded(CouponError):
    code = "offer_ended"
    default_detail = gettext_lazy("This coupon's offer is not running any more.")


class BelowMinimum(CouponError):
    code = "below_minimum"
    default_detail = gettext_lazy("Your cart is not worth enough for this coupon.")


class WrongCategories(CouponError):
    code = "wrong_categories"
    default_detail = gettext_lazy("Your cart holds nothing this coupon is for.")


class BudgetExhausted(CouponError):
    code = "budget_spent"
    default_detail = gettext_lazy("Sorry, this coupon's offer has run out.")


class CouponUnavailable(CouponError):
    """Coupons could not be checked (the plugin failed); the store carries on without a discount."""

    code = "unavailable"
    default_detail = gettext_lazy("Coupons cannot be checked right now. You can place your order without one.")


# What a coupon is worth -------------------------------------------------------------------------


@dataclass(frozen=True)
class Discount:
    """A valid coupon and what it takes off the cart it was checked against."""

    code: str
    amount: Decimal
    campaign_id: int
    campaign_name: str
    kind: str  # CouponCampaign.DiscountKind
    value: Decimal  # the percentage or the fixed amount
    expires_at: datetime


def normalize_code(text):
    """A code as typed (any case, with spaces or dashes) -> as stored."""
    return "".join(str(text or "").split()).replace("-", "").upper()


def new_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _new_codes(count):
    """`count` fresh codes, none already stored."""
    codes = set()
    while len(codes) < count:
        batch = {new_code() for _ in range(count - len(codes))} - codes
        codes |= batch - set(Coupon.objects.filter(code__in=batch).values_list("code", flat=True))
    return list(codes)


def _money(value):
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"cart_total: {value!r} is not an amount") from None


def _check(coupon, user, cart_total, cart_categories, now):
    """The discount of `coupon` on this cart, or the CouponError saying why not."""
    if user is None or not getattr(user, "is_authenticated", False) or str(coupon.user_id) != str(user.pk):
        raise NotYourCoupon()
    if coupon.status == Coupon.Status.REDEEMED or coupon.redeemed_at is not None:
        raise CouponUsed()
    if coupon.expires_at <= now:
        raise CouponExpired(
            _("This coupon expired on %(date)s.") % {"date": formats.date_format(coupon.expires_at, "DATE_FORMAT")}
        )
    campaign = coupon.campaign
    if not campaign.is_running(now):
        raise OfferEnded()
    minimum = max(campaign.min_cart_total, Decimal("0.01"))
    if cart_total < minimum:
        raise BelowMinimum(
            _("This coupon needs a cart worth at least %(minimum)s; yours is worth %(total)s.")
            % {"minimum": formats.number_format(minimum, 2), "total": formats.number_format(cart_total, 2)}
        )
    wanted = campaign.category_names
    if wanted and not {name.casefold() for name in wanted} & {str(name).casefold() for name in cart_categories}:
        raise WrongCategories(
            _("This coupon is for carts with a product from: %(categories)s.") % {"categories": ", ".join(wanted)}
        )
    amount = campaign.discount_for(cart_total)
    if campaign.spent + amount > campaign.budget:
        raise BudgetExhausted()
    return Discount(
        code=coupon.code,
        amount=amount,
        campaign_id=campaign.pk,
        campaign_name=campaign.name,
        kind=campaign.discount_kind,
        value=campaign.discount_value,
        expires_at=coupon.expires_at,
    )


def validate(code, user, cart_total, cart_categories=(), now=None):
    """The Discount `code` gives `user` on a cart worth `cart_total` holding products of
    `cart_categories` (names as the store's adapter reports them); a CouponError says why not."""
    now = now or timezone.now()
    cart_total = _money(cart_total)
    code = normalize_code(code)
    coupon = Coupon.objects.select_related("campaign").filter(code=code).first() if code else None
    if coupon is None:
        raise UnknownCoupon()
    return _check(coupon, user, cart_total, cart_categories, now)


def redeem(code, user, order_id, cart_total, cart_categories=(), now=None):
    """Uses `code` on order `order_id`: validates it, marks it redeemed and adds the discount to the
    campaign's spending, within the budget. Call it inside the order's transaction: if the order
    fails, nothing is used up. Of many concurrent redemptions of one code exactly one succeeds."""
    now = now or timezone.now()
    cart_total = _money(cart_total)
    code = normalize_code(code)
    with transaction.atomic():
        coupon = (
            Coupon.objects.select_for_update(of=("self",)).select_related("campaign").filter(code=code).first()
            if code
            else None
        )
        if coupon is None:
            raise UnknownCoupon()
        discount = _check(coupon, user, cart_total, cart_categories, now)
        used = Coupon.objects.filter(pk=coupon.pk, status=Coupon.Status.ISSUED, redeemed_at__isnull=True).update(
            status=Coupon.Status.REDEEMED, redeemed_at=now, order_id=str(order_id), discount=discount.amount
        )
        if not used:
            raise CouponUsed()
        within_budget = CouponCampaign.objects.filter(
            pk=coupon.campaign_id, spent__lte=F("budget") - discount.amount
        ).update(spent=F("spent") + discount.amount)
        if not within_budget:
            raise BudgetExhausted()  # leaving the atomic block undoes the coupon's update
    logger.info(
        "Coupon %s of campaign %s took %s off order %s", coupon.code, coupon.campaign_id, discount.amount, order_id
    )
    return discount


def open_coupons(user, now=None):
    """The shopper's coupons that can be used now, expiring first: unused, unexpired, their campaign
    running and within budget. Empty for anonymous shoppers and shoppers who opted out."""
    if user is None or not getattr(user, "is_authenticated", False) or privacy.is_opted_out(user_id=user.pk):
        return []
    now = now or timezone.now()
    return list(
        Coupon.objects.filter(
            Q(campaign__ends_at__isnull=True) | Q(campaign__ends_at__gt=now),
            user=user,
            status=Coupon.Status.ISSUED,
            expires_at__gt=now,
            campaign__active=True,
            campaign__starts_at__lte=now,
            campaign__spent__lt=F("campaign__budget"),
        )
        .select_related("campaign")
        .order_by("expires_at", "pk")
    )


def coupon_for(user, cart_total=None, now=None):
    """The shopper's best coupon to show now (of `open_coupons`). With `cart_total`, the one taking
    most off that cart; otherwise the one expiring first."""
    coupons = open_coupons(user, now)
    if not coupons or cart_total is None:
        return coupons[0] if coupons else None
    total = _money(cart_total)

    def worth(coupon):
        campaign = coupon.campaign
        return campaign.discount_for(total) if total >= campaign.min_cart_total else Decimal("0")

    return max(coupons, key=worth)  # max keeps the first (soonest expiring) of equals


# Issuing ---------------------------------------------------------------------------------------


@dataclass
class IssueResult:
    """What one issuing run did. eligible = issued + held_out + have_one + at_limit."""

    eligible: int = 0
    issued: int = 0
    held_out: int = 0
    have_one: int = 0  # shoppers who still hold an unused, unexpired coupon of the campaign
    at_limit: int = 0  # shoppers who already had as many coupons as the campaign allows
    not_issuing: str = ""  # why the campaign issues nothing now ("" when it ran)


def not_issuing_reason(campaign, now=None):
    """Why `campaign` cannot issue coupons now, or ""."""
    now = now or timezone.now()
    if not campaign.active:
        return _("the campaign is switched off")
    if campaign.starts_at > now:
        starts = formats.date_format(campaign.starts_at, "DATETIME_FORMAT")
        return _("the campaign starts on %(date)s") % {"date": starts}
    if campaign.ends_at is not None and campaign.ends_at <= now:
        return _("the campaign ended on %(date)s") % {"date": formats.date_format(campaign.ends_at, "DATETIME_FORMAT")}
    if campaign.spent >= campaign.budget:
        return _("the campaign's budget is spent")
    return ""


def in_holdout(campaign, user_pk):
    """Whether this shopper is held out of `campaign`: the same answer every time, and true for
    about `holdout_share` of all shoppers."""
    digest = hashlib.sha256(f"personalization.coupons:{campaign.pk}:{user_pk}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < float(campaign.holdout_share)


def eligible_shoppers(campaign, now=None):
    """The primary keys of the accounts in the campaign's audience, less those who opted out of
    personalization, in order (for a likely to redeem audience: its first `audience_size`, likeliest
    first). Raises audiences.AudienceUnavailable when it cannot be computed."""
    # Imported here: audiences read pandas (and torch); checking a coupon at checkout needs neither.
    from personalization.services import audiences

    accounts = _accounts(audiences.members(campaign, now))
    if campaign.audience == CouponCampaign.Audience.LIKELY_TO_REDEEM:
        return accounts[: campaign.audience_size]
    return sorted(accounts)


def _accounts(user_ids):
    """The primary keys of `user_ids` that are accounts which did not opt out, in the same order."""
    user_model = get_user_model()
    pk_field = user_model._meta.pk
    keys = []
    for user_id in user_ids:
        try:
            keys.append(pk_field.to_python(user_id))
        except ValidationError:  # imported history of a shopper without an account
            continue
    found = set()
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[start : start + _LOOKUP_CHUNK]
        found.update(user_model._default_manager.filter(pk__in=chunk).values_list("pk", flat=True))
    found -= set(OptOut.objects.filter(user__isnull=False).values_list("user_id", flat=True))
    return [key for key in keys if key in found]


def issue(campaign, now=None):
    """Gives each eligible shopper of the treatment group a coupon, unless they still hold an unused
    one or have had `per_shopper_limit`; records each new shopper's group. Running it again issues
    nothing new until coupons are used or expire."""
    now = now or timezone.now()
    reason = not_issuing_reason(campaign, now)
    if reason:
        return IssueResult(not_issuing=reason)
    eligible = eligible_shoppers(campaign, now)
    result = IssueResult(eligible=len(eligible))
    with transaction.atomic():
        # One issuing run per campaign at a time, so the per-shopper limit holds.
        campaign = CouponCampaign.objects.select_for_update().get(pk=campaign.pk)
        groups = _assign_groups(campaign, eligible, now)
        treated = [user_pk for user_pk in eligible if groups[user_pk] == CouponAssignment.Group.TREATMENT]
        result.held_out = len(eligible) - len(treated)
        held = _coupons_held(campaign, treated, now)
        receiving = []
        for user_pk in treated:
            total, unused = held.get(user_pk, (0, 0))
            if unused:
                result.have_one += 1
            elif total >= campaign.per_shopper_limit:
                result.at_limit += 1
            else:
                receiving.append(user_pk)
        expires_at = campaign.expiry_for(now)
        Coupon.objects.bulk_create(
            Coupon(code=code, campaign=campaign, user_id=user_pk, issued_at=now, expires_at=expires_at)
            for code, user_pk in zip(_new_codes(len(receiving)), receiving)
        )
        result.issued = len(receiving)
    logger.info(
        "Campaign %s issued %d coupons: %d shoppers in the audience, %d held out, %d hold one, %d at their limit",
        campaign.pk, result.issued, result.eligible, result.held_out, result.have_one, result.at_limit,
    )
    return result


def _assign_groups(campaign, user_pks, now):
    """{user pk: group}, drawing and storing the group of shoppers seen for the first time."""
    groups = dict(CouponAssignment.objects.filter(campaign=campaign).values_list("user_id", "group"))
    new = []
    for user_pk in user_pks:
        if user_pk not in groups:
            held_out = in_holdout(campaign, user_pk)
            group = CouponAssignment.Group.HOLDOUT if held_out else CouponAssignment.Group.TREATMENT
            groups[user_pk] = group
            new.append(CouponAssignment(campaign=campaign, user_id=user_pk, group=group, assigned_at=now))
    CouponAssignment.objects.bulk_create(new, batch_size=_LOOKUP_CHUNK)
    return groups


def _coupons_held(campaign, user_pks, now):
    """{user pk: (coupons ever issued, unused and unexpired ones)} for the campaign."""
    held = {}
    for start in range(0, len(user_pks), _LOOKUP_CHUNK):
        rows = (
            Coupon.objects.filter(campaign=campaign, user_id__in=user_pks[start : start + _LOOKUP_CHUNK])
            .values("user_id")
            .annotate(total=Count("pk"), unused=Count("pk", filter=Q(status=Coupon.Status.ISSUED, expires_at__gt=now)))
            .order_by()
        )
        held.update({row["user_id"]: (row["total"], row["unused"]) for row in rows})
    return held


def issue_abandoned_cart_coupons(now=None):
    """Runs `issue` for every running abandoned-cart campaign; {campaign: IssueResult}. A campaign
    that fails is logged and the others still run."""
    now = now or timezone.now()
    results = {}
    running = CouponCampaign.objects.filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now),
        audience=CouponCampaign.Audience.CART_ABANDONMENT,
        active=True,
        starts_at__lte=now,
    )
    for campaign in running:
        try:
            results[campaign] = issue(campaign, now)
        except Exception:
            logger.exception("Could not issue abandoned-cart coupons of campaign %s", campaign.pk)
    return results


def expire(now=None):
    """Marks unused coupons past their expiry as expired; returns how many. (Checking a coupon reads
    `expires_at`, so this only keeps the status, and the admin's filters, current.)"""
    now = now or timezone.now()
    return Coupon.objects.filter(status=Coupon.Status.ISSUED, expires_at__lte=now).update(status=Coupon.Status.EXPIRED)


__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "CouponError",
    "UnknownCoupon",
    "NotYourCoupon",
    "CouponUsed",
    "CouponExpired",
    "OfferEnded",
    "BelowMinimum",
    "WrongCategories",
    "BudgetExhausted",
    "CouponUnavailable",
    "Discount",
    "IssueResult",
    "normalize_code",
    "new_code",
    "validate",
    "redeem",
    "open_coupons",
    "coupon_for",
    "not_issuing_reason",
    "in_holdout",
    "eligible_shoppers",
    "issue",
    "issue_abandoned_cart_coupons",
    "expire",
]
