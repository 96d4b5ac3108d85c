"""What each promotion did: impressions, clicks, attributed revenue, and its lift against its holdout.

Impressions and clicks are the promotion's events (`data["promotion"]`, which only the server
records). A shopper's outcome window is the promotion's `attribution_days` from the moment their
group was drawn (`first_seen`): the same for shown and held-out shoppers, so the two compare fairly.
Attributed revenue is what the shoppers shown it bought within their window. Lift is the difference
between shown and held-out shoppers in conversion (bought anything within the window) and in revenue
per shopper, each with its 95% interval (services.experiment_stats: Wilson for the rates, Welch for
the differences). Every exposed shopper counts, windows still open included: both groups alike.
"""
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Min, Q
from django.db.models.fields.json import KeyTextTransform

from personalization.experiments import stats
from personalization.models import Event, EventKind, Promotion, PromotionExposure
from personalization.models.coupons import CENT


@dataclass(frozen=True)
class GroupOutcome:
    shoppers: int
    converted: int
    revenue: Decimal
    conversion: object  # stats.Estimate (Wilson interval) or None without shoppers
    revenue_per_shopper: object  # stats.Estimate or None


@dataclass(frozen=True)
class PromotionPerformance:
    promotion_id: int
    name: str
    slot: str
    impressions: int
    clicks: int
    shown: GroupOutcome  # the treatment group: shoppers shown it
    holdout: GroupOutcome
    conversion_lift: object  # stats.Difference (shown minus holdout, a share) or None
    revenue_lift: object  # stats.Difference of revenue per shopper, or None

    @property
    def ctr(self):
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def ctr_percent(self):
        return 100 * self.ctr

    @property
    def attributed_revenue(self):
        return self.shown.revenue

    @property
    def lift_points(self):
        """The conversion lift in percentage points with its interval: (value, low, high), or None."""
        if self.conversion_lift is None:
            return None
        estimate = self.conversion_lift.estimate
        return tuple(round(100 * v, 2) for v in (estimate.value, estimate.low, estimate.high))

    @property
    def revenue_lift_values(self):
        """The lift in revenue per shopper with its interval: (value, low, high), or None."""
        if self.revenue_lift is None:
            return None
        estimate = self.revenue_lift.estimate
        return tuple(round(v, 2) for v in (estimate.value, estimate.low, estimate.high))


def event_counts(promotion_ids=None):
    """{promotion id: (impressions, clicks)} from the promotions' events."""
    rows = (
        Event.objects.filter(kind__in=[EventKind.IMPRESSION, EventKind.CLICK])
        .annotate(promotion=KeyTextTransform("promotion", "data"))
        .exclude(promotion__isnull=True)
    )
    if promotion_ids is not None:
        rows = rows.filter(promotion__in=[str(pk) for pk in promotion_ids])
    rows = (
        rows.order_by()
        .values("promotion")
        .annotate(
            impressions=Count("id", filter=Q(kind=EventKind.IMPRESSION)),
            clicks=Count("id", filter=Q(kind=EventKind.CLICK)),
        )
    )
    found = {}
    for row in rows:
        try:
            found[int(row["promotion"])] = (row["impressions"], row["clicks"])
        except (TypeError, ValueError):
            continue
    return found


def outcomes(promotion):
    """{exposure id: (group, converted 0/1, revenue as Decimal)} of the promotion's exposed shoppers."""
    exposures = list(promotion.exposures.values_list("pk", "group", "user_id", "session_key", "first_seen"))
    if not exposures:
        return {}
    window = timedelta(days=promotion.attribution_days)
    found = {pk: [group, 0, Decimal("0")] for pk, group, *_ in exposures}
    by_user = {user_id: (pk, seen) for pk, _, user_id, _, seen in exposures if user_id}
    by_session = {key: (pk, seen) for pk, _, user_id, key, seen in exposures if key and not user_id}
    recorded = promotion.exposures.all()
    earliest = recorded.aggregate(first=Min("first_seen"))["first"]
    purchases = Event.objects.filter(
        Q(user_id__in=recorded.exclude(user_id="").values("user_id"))
        | Q(user_id="", session_key__in=recorded.filter(user_id="").values("session_key")),
        kind=EventKind.PURCHASE,
        created_at__gte=earliest,
    ).values_list("user_id", "session_key", "created_at", "quantity", "unit_price")
    for user_id, session_key, created_at, quantity, unit_price in purchases.iterator():
        pk, seen = (by_user if user_id else by_session).get(user_id or session_key, (None, None))
        if pk is None or not seen <= created_at < seen + window:
            continue
        found[pk][1] = 1
        found[pk][2] += Decimal(quantity) * (unit_price or Decimal("0"))
    return {pk: (group, converted, revenue) for pk, (group, converted, revenue) in found.items()}


def _group(values):
    converted = [c for c, _ in values]
    revenue = [float(r) for _, r in values]
    return GroupOutcome(
        shoppers=len(values),
        converted=sum(converted),
        revenue=sum((r for _, r in values), Decimal("0")).quantize(CENT),
        conversion=stats.rate(sum(converted), len(values)),
        revenue_per_shopper=stats.mean(revenue),
    )


def performance(promotion, counts=None):
    """The PromotionPerformance of one promotion (`counts`: event_counts() already read)."""
    counts = event_counts([promotion.pk]) if counts is None else counts
    impressions, clicks = counts.get(promotion.pk, (0, 0))
    per_shopper = outcomes(promotion).values()
    shown = [(c, r) for g, c, r in per_shopper if g == PromotionExposure.Group.TREATMENT]
    held = [(c, r) for g, c, r in per_shopper if g == PromotionExposure.Group.HOLDOUT]
    return PromotionPerformance(
        promotion_id=promotion.pk,
        name=promotion.name,
        slot=promotion.slot,
        impressions=impressions,
        clicks=clicks,
        shown=_group(shown),
        holdout=_group(held),
        conversion_lift=stats.difference([c for c, _ in shown], [c for c, _ in held]),
        revenue_lift=stats.difference([float(r) for _, r in shown], [float(r) for _, r in held]),
    )


def all_performance():
    """[PromotionPerformance] of every promotion that was shown or has exposed shoppers, newest first."""
    counts = event_counts()
    exposed = set(PromotionExposure.objects.values_list("promotion_id", flat=True).distinct())
    promotions = Promotion.objects.filter(pk__in=exposed | set(counts)).order_by("-created_at", "-id")
    return [performance(promotion, counts) for promotion in promotions]


__all__ = ["GroupOutcome", "PromotionPerformance", "event_counts", "outcomes", "performance", "all_performance"]
