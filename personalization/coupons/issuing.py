"""Issuing personalized coupons: who in a campaign's audience gets one, who is held out (recorded),
and the hourly chores (abandoned-cart campaigns, expiry). Checking and redeeming: services.coupons."""
import hashlib
import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from personalization.coupons.codes import LOOKUP_CHUNK, new_codes
from personalization.models import Coupon, CouponAssignment, CouponCampaign, OptOut

logger = logging.getLogger("personalization.coupons")

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
    from personalization.serving import audiences

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
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
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
            for code, user_pk in zip(new_codes(len(receiving)), receiving)
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
    CouponAssignment.objects.bulk_create(new, batch_size=LOOKUP_CHUNK)
    return groups


def _coupons_held(campaign, user_pks, now):
    """{user pk: (coupons ever issued, unused and unexpired ones)} for the campaign."""
    held = {}
    for start in range(0, len(user_pks), LOOKUP_CHUNK):
        rows = (
            Coupon.objects.filter(campaign=campaign, user_id__in=user_pks[start : start + LOOKUP_CHUNK])
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
    "IssueResult",
    "not_issuing_reason",
    "in_holdout",
    "eligible_shoppers",
    "issue",
    "issue_abandoned_cart_coupons",
    "expire",
]
