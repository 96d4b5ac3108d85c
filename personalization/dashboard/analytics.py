"""The figures of the admin's Personalization dashboard: plain aggregate queries over the event
log, coupons, model versions, promotions and experiments. Nothing here writes; each function but
experiment_results (services.experiments.outcomes() per experiment) is a few queries whatever the
number of rows.

The time-series charts (events per day by kind, attributed add-to-carts and revenue per day,
coupons issued and redeemed per day) are django-admin-charts' DashboardStats rows
(`personalization.dashboard.charts`); the figures below are the ones it cannot express.
"""
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import CharField, Count, DecimalField, Exists, ExpressionWrapper, F, OuterRef, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from personalization.models import (
    Coupon,
    CouponAssignment,
    CouponCampaign,
    Event,
    EventKind,
    Experiment,
    ModelVersion,
    Placement,
)

#: The held-out metric the dashboard follows across model versions.
RECALL_METRIC = "recall@10"


def _since(queryset, since, field="created_at"):
    return queryset.filter(**{f"{field}__gte": since}) if since else queryset


def _rate(part, whole):
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class PlacementStats:
    slug: str
    name: str
    impressions: int
    clicks: int

    @property
    def ctr(self):
        """Clicks per impression (0.0 for a placement never shown)."""
        return _rate(self.clicks, self.impressions)

    @property
    def ctr_percent(self):
        return 100 * self.ctr


def placement_ctr(since=None):
    """[PlacementStats] of every placement that was shown or clicked, most impressions first. An
    impression is one shown item; a click names its placement too (`data["placement"]`)."""
    rows = (
        _since(Event.objects.filter(kind__in=[EventKind.IMPRESSION, EventKind.CLICK]), since)
        .annotate(placement=KeyTextTransform("placement", "data"))
        .exclude(placement__isnull=True)
        .order_by()
        .values("placement")
        .annotate(
            impressions=Count("id", filter=Q(kind=EventKind.IMPRESSION)),
            clicks=Count("id", filter=Q(kind=EventKind.CLICK)),
        )
    )
    names = dict(Placement.objects.values_list("slug", "name"))
    stats = [
        PlacementStats(row["placement"], names.get(row["placement"], row["placement"]), row["impressions"], row["clicks"])
        for row in rows
    ]
    return sorted(stats, key=lambda s: (-s.impressions, s.slug))


def _line_total():
    return ExpressionWrapper(F("quantity") * F("unit_price"), output_field=DecimalField(max_digits=14, decimal_places=2))


def attributed(since=None):
    """What recommendations led to: {"cart_adds", "purchases" (order lines), "revenue"} of the
    events carrying a recommendation id; revenue is quantity x unit price of those purchases."""
    events = _since(Event.objects.exclude(recommendation_id=""), since)
    figures = events.aggregate(
        cart_adds=Count("id", filter=Q(kind=EventKind.CART_ADD)),
        purchases=Count("id", filter=Q(kind=EventKind.PURCHASE)),
        revenue=Sum(_line_total(), filter=Q(kind=EventKind.PURCHASE)),
    )
    # Quantized: SQLite multiplies decimals as floats.
    figures["revenue"] = Decimal(figures["revenue"] or 0).quantize(Decimal("0.01"))
    return figures


def coupon_totals(since=None):
    """{"issued", "redeemed"}: coupons issued (since), and those of them redeemed."""
    coupons = _since(Coupon.objects.all(), since, "issued_at")
    return coupons.aggregate(issued=Count("id"), redeemed=Count("id", filter=Q(status=Coupon.Status.REDEEMED)))


@dataclass(frozen=True)
class GroupConversion:
    shoppers: int
    converted: int

    @property
    def rate(self):
        return _rate(self.converted, self.shoppers)

    @property
    def percent(self):
        return 100 * self.rate


@dataclass(frozen=True)
class CampaignConversion:
    campaign_id: int
    name: str
    treatment: GroupConversion
    holdout: GroupConversion

    @property
    def difference(self):
        """Treatment's conversion minus the holdout's (a share: 0.05 is five percentage points)."""
        return self.treatment.rate - self.holdout.rate

    @property
    def difference_points(self):
        return 100 * self.difference


def incremental_conversion():
    """[CampaignConversion] of every campaign with assigned shoppers, oldest campaign first.

    A shopper converted when they bought anything (a purchase event) from their assignment until a
    coupon issued then would expire (`coupon_valid_days`, never after the campaign ends). Every
    treatment shopper counts, with or without a coupon in the end: the comparison stays fair."""
    results = []
    campaigns = CouponCampaign.objects.filter(assignments__isnull=False).distinct().order_by("created_at", "id")
    for campaign in campaigns:
        purchases = Event.objects.filter(
            kind=EventKind.PURCHASE,
            user_id=Cast(OuterRef("user_id"), CharField()),
            created_at__gte=OuterRef("assigned_at"),
            created_at__lt=ExpressionWrapper(
                OuterRef("assigned_at") + timedelta(days=campaign.coupon_valid_days), output_field=Event._meta.get_field("created_at")
            ),
        )
        if campaign.ends_at:
            purchases = purchases.filter(created_at__lt=campaign.ends_at)
        rows = (
            CouponAssignment.objects.filter(campaign=campaign)
            .annotate(converted=Exists(purchases))
            .order_by()
            .values("group")
            .annotate(shoppers=Count("id"), converted_shoppers=Count("id", filter=Q(converted=True)))
        )
        groups = {row["group"]: GroupConversion(row["shoppers"], row["converted_shoppers"]) for row in rows}
        empty = GroupConversion(0, 0)
        results.append(
            CampaignConversion(
                campaign.pk,
                campaign.name,
                groups.get(CouponAssignment.Group.TREATMENT, empty),
                groups.get(CouponAssignment.Group.HOLDOUT, empty),
            )
        )
    return results


def promotion_performance():
    """[promotion_stats.PromotionPerformance] of every promotion shown or with exposed shoppers, newest
    first: impressions, clicks, the revenue of the shoppers shown it, and its lift against its holdout."""
    from personalization.promotions import stats as promotion_stats

    return promotion_stats.all_performance()


def recall_history(metric=RECALL_METRIC):
    """{model kind: [(created_at, version number, value)]}, oldest first, of every model version
    whose held-out metrics include `metric` (versions without it, e.g. propensity, are left out)."""
    history = {}
    for kind, number, created_at, metrics in ModelVersion.objects.order_by("created_at", "number").values_list(
        "kind", "number", "created_at", "metrics"
    ):
        value = (metrics or {}).get(metric)
        if isinstance(value, (int, float)):
            history.setdefault(kind, []).append((created_at, number, float(value)))
    return history


@dataclass(frozen=True)
class ArmSummary:
    """One arm of an experiment as the dashboard shows it: the decisive metric over every exposed
    shopper (95% Wilson interval) and its difference to the reference over the counted shoppers."""

    name: str
    exposed: int
    counted: int  # shoppers whose outcome window has closed
    rate: object  # experiment_stats.Estimate, or None without shoppers
    difference: object  # experiment_stats.Difference, or None (the reference, or nothing to compare)
    reference: bool
    winner: bool

    @property
    def percent(self):
        """(rate, low, high) in percent, or None."""
        return None if self.rate is None else tuple(100 * v for v in (self.rate.value, self.rate.low, self.rate.high))

    @property
    def difference_points(self):
        """(difference, low, high) in percentage points, or None."""
        if self.difference is None:
            return None
        estimate = self.difference.estimate
        return tuple(100 * v for v in (estimate.value, estimate.low, estimate.high))


@dataclass(frozen=True)
class ExperimentSummary:
    experiment_id: int
    name: str
    placement: str
    metric: str  # the decisive metric's label
    starts_at: object
    stops_at: object
    running: bool
    needed: int  # shoppers per arm the decision needs
    ready: bool  # every arm reached the horizon
    winner: str | None
    applied: str | None  # the arm made the placement's configuration
    arms: list

    @property
    def exposed(self):
        return sum(arm.exposed for arm in self.arms)

    @property
    def fewest(self):
        """Exposed shoppers of the arm with the fewest: how far the experiment is from its horizon."""
        return min((arm.exposed for arm in self.arms), default=0)

    @property
    def fewest_counted(self):
        return min((arm.counted for arm in self.arms), default=0)


def experiment_results(since, now=None):
    """[ExperimentSummary] of every experiment running at `now` or stopped since `since` (started by
    then), running ones first, then the most recently started: services.experiments.outcomes() each."""
    from personalization.experiments import arms as experiments

    now = now or timezone.now()
    found = (
        Experiment.objects.filter(starts_at__lte=now)
        .filter(Q(stops_at__isnull=True) | Q(stops_at__gte=since))
        .select_related("placement", "applied_arm")
        .order_by("-starts_at", "-id")
    )
    summaries = []
    for experiment in found:
        result = experiments.outcomes(experiment, now)
        primary = experiment.primary_metric
        winner = result.winner
        summaries.append(
            ExperimentSummary(
                experiment_id=experiment.pk,
                name=experiment.name,
                placement=experiment.placement.name,
                metric=str(experiment.get_primary_metric_display()),
                starts_at=experiment.starts_at,
                stops_at=experiment.stops_at,
                running=experiment.is_running(now),
                needed=result.needed,
                ready=result.decision.ready,
                winner=winner.name if winner else None,
                applied=experiment.applied_arm.name if experiment.applied_arm else None,
                arms=[
                    ArmSummary(
                        name=row.arm.name,
                        exposed=row.exposed,
                        counted=len(row.matured),
                        rate=row.rates[primary],
                        difference=row.differences.get(primary),
                        reference=index == 0,
                        winner=winner is not None and row.arm.pk == winner.pk,
                    )
                    for index, row in enumerate(result.arms)
                ],
            )
        )
    return sorted(summaries, key=lambda s: not s.running)  # stable: newest first within each group
