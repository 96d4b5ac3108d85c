"""Personalized coupons: checking and redeeming them (issuing: services.coupon_issuing).

Limits hold under concurrency: a coupon is redeemed by one conditional UPDATE (only while it is
still unused), and a campaign's `spent` grows by one conditional UPDATE (only while
`spent + discount <= budget`), both in the caller's transaction, so an order that fails leaves the
coupon unused. A holdout share of each campaign's audience, drawn deterministically per shopper,
gets no coupon and is recorded as such.
"""
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import F, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from personalization.capture import privacy
from personalization.models import Coupon, CouponCampaign

logger = logging.getLogger("personalization.coupons")

#: Letters and digits that cannot be mistaken for one another (no 0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
#: 12 characters of 31: about 59 bits, far beyond guessing.
CODE_LENGTH = 12
LOOKUP_CHUNK = 500


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


def new_codes(count):
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
    "normalize_code",
    "new_code",
    "validate",
    "redeem",
    "open_coupons",
    "coupon_for",
]
