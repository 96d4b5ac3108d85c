"""A/B experiments on placements: each shopper's arm, exposures, outcomes per arm and the winner.

`ranking.recommend` asks `placement_for(placement, shopper, shopper_state)` for the placement a shopper is served:
when an experiment runs on it, the shopper's arm (a deterministic hash of the experiment and the
shopper, or the arm they already have) is recorded on first exposure and the placement comes back
with the arm's strategy, number of products or model version (`Placement.model_versions`, pinned
while its shortlist is built), or inactive for a "no recommendations" arm. Stores change nothing. A session's arm follows the shopper when they sign in (`merge_session`).

Outcomes per arm count what each exposed shopper did within the experiment's `outcome_days` after
their first exposure: clicked a recommendation of the placement, added anything to the cart, bought
anything, and the revenue of what they bought. The decision uses experiment_stats (fixed horizon).
"""
import copy
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from personalization import registry, state
from personalization.cache import cache
from personalization.capture import privacy
from personalization.experiments import stats
from personalization.models import Event, EventKind, Experiment, ExperimentArm, ExperimentExposure

logger = logging.getLogger("personalization.experiments")

#: How long a placement's running experiment (or that it has none) is cached; saving one clears it.
EXPERIMENT_CACHE_SECONDS = 60
#: How long a shopper's arm is remembered in the cache (it is kept in the database for good).
ARM_CACHE_SECONDS = 24 * 60 * 60
_NONE = 0  # cached: the placement runs no experiment now


@dataclass(frozen=True)
class _Arm:
    id: int
    share: int
    strategy: str
    limit: int | None
    show_nothing: bool
    model_versions: tuple  # (model kind, version id) pairs the arm serves with instead of the active ones


@dataclass(frozen=True)
class _Running:
    id: int
    starts_at: object
    stops_at: object
    arms: tuple


def cache_key(placement_slug):
    """Where a placement's running experiment is cached (ranking reads it with the placement)."""
    return Experiment.cache_key(placement_slug)


def placement_for(placement, shopper, shopper_state=None):
    """The placement as `shopper` is to be served it: a copy changed by their arm when an experiment
    runs on it (their exposure recorded), else `placement` itself. `shopper_state`: the shopper's
    state.ShopperState, whose opt-out answer is used and, when it was read with this placement, its
    cached experiment (what it lacks comes from the database); None: both are read here. Never raises."""
    if placement.pk is None or not placement.active or not shopper:
        return placement
    try:
        if shopper_state is not None and shopper_state.placement_slug == placement.slug:
            cached = shopper_state.experiment
        else:
            cached = cache.get(cache_key(placement.slug))
        running = _running(placement, cached)
        if running is None:
            return placement
        if shopper_state is not None:
            opted_out = shopper_state.is_opted_out()
        else:
            opted_out = privacy.is_opted_out(shopper.user_id, shopper.session_key)
        if opted_out:
            return placement
        return _with_arm(placement, _arm_of(running, shopper))
    except Exception:
        logger.exception("Could not find the experiment arm of placement %r; serving it as configured", placement.slug)
        return placement


def _with_arm(placement, arm):
    served = copy.copy(placement)
    if arm.show_nothing:
        served.active = False
    if arm.strategy:
        served.strategy = arm.strategy
        if served.fallback_strategy == arm.strategy:
            served.fallback_strategy = placement.strategy
    if arm.limit:
        served.limit = arm.limit
    if arm.model_versions:
        served.model_versions = dict(arm.model_versions)
    return served


def _pins(arm):
    version = arm.model_version
    return () if version is None else ((version.kind, version.pk),)


def _running(placement, found):
    """The _Running experiment of a placement now, or None. `found`: what the cache held under
    cache_key(slug), None when nothing (it is read from the database then, and cached briefly)."""
    if found is None:
        found = _NONE
        now = timezone.now()
        experiment = (
            Experiment.objects.filter(placement_id=placement.pk, starts_at__lte=now)
            .filter(Q(stops_at__isnull=True) | Q(stops_at__gt=now))
            .order_by("starts_at")
            .first()
        )
        arms = tuple(
            _Arm(arm.pk, arm.share, arm.strategy, arm.limit, arm.show_nothing, _pins(arm))
            for arm in experiment.arms.select_related("model_version")
        ) if experiment else ()
        if len(arms) >= 2:
            found = _Running(experiment.pk, experiment.starts_at, experiment.stops_at, arms)
        cache.set(cache_key(placement.slug), found, EXPERIMENT_CACHE_SECONDS)
    if found == _NONE:
        return None
    now = timezone.now()
    return found if found.starts_at <= now and (found.stops_at is None or now < found.stops_at) else None


def shopper_key(shopper):
    """The shopper as ExperimentExposure.shopper_key names them."""
    return f"u{shopper.user_id}" if shopper.user_id else f"s{shopper.session_key}"


def _arm_of(running, shopper):
    """The shopper's arm: remembered, else recorded now (first exposure)."""
    key = shopper_key(shopper)
    remembered = state.arm_key(running.id, shopper)
    arms = {arm.id: arm for arm in running.arms}
    arm_id = cache.get(remembered)
    if arm_id not in arms:
        arm_id = _recorded_arm(running, shopper, key)
        if arm_id not in arms:  # an arm deleted while the experiment ran: assign again, keep no record
            arm_id = running.arms[stats.bucket(running.id, key, [arm.share for arm in running.arms])].id
        cache.set(remembered, arm_id, ARM_CACHE_SECONDS)
    return arms[arm_id]


def _recorded_arm(running, shopper, key):
    """The arm id recorded for the shopper, recording it (first exposure) when there is none."""
    mine = Q(shopper_key=key) | Q(user_id=str(shopper.user_id)) if shopper.user_id else Q(shopper_key=key)
    found = ExperimentExposure.objects.filter(mine, experiment_id=running.id).values_list("arm_id", flat=True).first()
    if found is not None:
        return found
    arm = running.arms[stats.bucket(running.id, key, [arm.share for arm in running.arms])]
    try:
        with transaction.atomic():
            ExperimentExposure.objects.create(
                experiment_id=running.id,
                arm_id=arm.id,
                shopper_key=key,
                user_id=str(shopper.user_id or ""),
                session_key="" if shopper.user_id else shopper.session_key,
            )
    except IntegrityError:  # another request of the same shopper recorded it first
        return ExperimentExposure.objects.filter(experiment_id=running.id, shopper_key=key).values_list("arm_id", flat=True).first()
    return arm.id


def merge_session(session_keys, user):
    """The arms of an anonymous shopper who just signed in become the user's (where the user has
    none in that experiment yet; otherwise the user's arm stays and the session's record goes, so
    the shopper is counted once). Never raises."""
    keys = [f"s{key}" for key in set(session_keys) if key]
    if not keys:
        return
    try:
        user_id = str(user.pk)
        sessions = ExperimentExposure.objects.filter(shopper_key__in=keys)
        taken = set(
            ExperimentExposure.objects.filter(Q(user_id=user_id), experiment__in=sessions.values("experiment"))
            .exclude(shopper_key__in=keys)
            .values_list("experiment_id", flat=True)
        )
        sessions.filter(experiment_id__in=taken).delete()
        moved = list(sessions.values_list("experiment_id", "arm_id"))
        sessions.update(user_id=user_id)
        cache.set_many(
            {state.arm_key(experiment, state.Shopper(user_id=user_id)): arm for experiment, arm in moved},
            ARM_CACHE_SECONDS,
        )
    except Exception:
        logger.exception("Could not move the experiment arms of sessions to user %s", user.pk)


# Outcomes --------------------------------------------------------------------------------------

METRICS = ("click_through", "add_to_cart", "conversion")


@dataclass
class ArmOutcome:
    arm: ExperimentArm
    exposed: int  # shoppers recorded so far
    matured: list  # per shopper whose outcome window closed, in order of exposure: {metric: value}
    rates: dict  # metric -> stats.Estimate (every exposed shopper so far) or None
    revenue: object  # stats.Estimate of revenue per exposed shopper, or None
    differences: dict  # metric -> stats.Difference with the reference arm (None for the reference)


@dataclass
class Result:
    experiment: Experiment
    needed: int  # shoppers per arm the decision needs (fixed up front)
    arms: list  # ArmOutcome, the reference first
    decision: stats.Decision

    @property
    def winner(self):
        return None if self.decision.winner is None else self.arms[self.decision.winner].arm


def needed(experiment, arms=None):
    """Shoppers per arm the experiment's decision needs."""
    count = arms if arms is not None else experiment.arms.count()
    return stats.shoppers_needed(experiment.baseline_rate, experiment.minimum_lift, max(count, 2))


def outcomes(experiment, now=None):
    """The experiment's Result: per-arm rates and revenue with intervals, and the decision."""
    now = now or timezone.now()
    arms = list(experiment.arms.all())
    exposures = list(experiment.exposures.order_by("first_seen", "id"))
    window = timedelta(days=experiment.outcome_days)
    per_shopper = _per_shopper(experiment, exposures, window)
    level = stats.comparison_alpha(len(arms))
    rows = []
    for arm in arms:
        mine = [(e, per_shopper[e.pk]) for e in exposures if e.arm_id == arm.pk]
        values = [v for _, v in mine]
        rows.append(
            ArmOutcome(
                arm=arm,
                exposed=len(mine),
                matured=[v for e, v in mine if e.first_seen + window <= now],
                rates={m: stats.rate(sum(v[m] for v in values), len(values)) for m in METRICS},
                revenue=stats.mean([v["revenue"] for v in values]),
                differences={},
            )
        )
    for row in rows[1:]:
        for metric in (*METRICS, "revenue"):
            row.differences[metric] = stats.difference(
                [v[metric] for v in row.matured], [v[metric] for v in rows[0].matured], level
            )
    count = needed(experiment, len(arms))
    primary = experiment.primary_metric
    decision = stats.decide([[v[primary] for v in row.matured] for row in rows], count) if len(rows) >= 2 else stats.Decision(False, None, [])
    return Result(experiment, count, rows, decision)


def _per_shopper(experiment, exposures, window):
    """{exposure id: {metric: 0/1, "revenue": float}} from the Events of the exposed shoppers."""
    found = {e.pk: {"click_through": 0, "add_to_cart": 0, "conversion": 0, "revenue": 0.0} for e in exposures}
    by_user = {e.user_id: e for e in exposures if e.user_id}
    by_session = {e.session_key: e for e in exposures if e.session_key and not e.user_id}
    recorded = experiment.exposures.all()
    events = Event.objects.filter(
        Q(user_id__in=recorded.exclude(user_id="").values("user_id"))
        | Q(user_id="", session_key__in=recorded.filter(user_id="").values("session_key")),
        kind__in=[EventKind.CLICK, EventKind.CART_ADD, EventKind.PURCHASE],
        created_at__gte=experiment.starts_at,
    ).values_list("kind", "user_id", "session_key", "created_at", "quantity", "unit_price", "data")
    for kind, user_id, session_key, created_at, quantity, unit_price, data in events.iterator():
        exposure = by_user.get(user_id) if user_id else by_session.get(session_key)
        if exposure is None or not exposure.first_seen <= created_at < exposure.first_seen + window:
            continue
        shopper = found[exposure.pk]
        if kind == EventKind.CLICK and (data or {}).get("placement") == experiment.placement.slug:
            shopper["click_through"] = 1
        elif kind == EventKind.CART_ADD:
            shopper["add_to_cart"] = 1
        elif kind == EventKind.PURCHASE:
            shopper["conversion"] = 1
            shopper["revenue"] += float(quantity * (unit_price or 0))
    return found


def apply_winner(experiment, now=None):
    """Makes the winning arm the placement's configuration and stops the experiment. Returns the
    arm, or None (and changes nothing) when there is no winner yet."""
    winner = outcomes(experiment, now).winner
    if winner is None:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        placement = experiment.placement
        if winner.show_nothing:
            placement.active = False
        if winner.strategy:
            if placement.fallback_strategy == winner.strategy:
                placement.fallback_strategy = placement.strategy
            placement.strategy = winner.strategy
        if winner.limit:
            placement.limit = winner.limit
        placement.save()
        if winner.model_version is not None and not winner.model_version.is_active:
            registry.activate(winner.model_version)
        experiment.applied_arm = winner
        if experiment.stops_at is None or experiment.stops_at > now:
            experiment.stops_at = now
        experiment.save()
    return winner
