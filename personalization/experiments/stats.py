"""The numbers of an A/B experiment: which arm a shopper gets, how many shoppers a decision needs,
and the decision. Pure Python and numpy (no Django), so a simulation runs the same code as the admin.

The design is fixed-horizon. Before the experiment starts, the number of shoppers each arm needs
(`shoppers_needed`) follows from the expected rate of the reference arm, the smallest relative
change worth finding, a 5% false-positive rate (split between the comparisons with the reference:
Bonferroni) and 80% power. `decide` declares nothing until every arm has that many shoppers whose
outcome window has closed, and then judges exactly the first that many of each arm, so looking at
the results every day does not change the answer and cannot inflate the false-positive rate.
"""
import hashlib
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

ALPHA = 0.05
POWER = 0.8
_NORMAL = NormalDist()


def bucket(experiment_id, shopper_key, shares):
    """The index of the arm a shopper gets: a deterministic hash of (experiment, shopper) mapped onto
    the arms' `shares` (positive weights), so a shopper gets the same arm on every visit."""
    if not shares or any(share <= 0 for share in shares):
        raise ValueError("shares: every arm needs a positive share")
    digest = hashlib.sha256(f"{experiment_id}:{shopper_key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(shares)
    total = 0
    for index, share in enumerate(shares):
        total += share
        if point < total:
            return index
    return len(shares) - 1


def comparison_alpha(arms, alpha=ALPHA):
    """The two-sided level of each comparison with the reference arm (Bonferroni)."""
    return alpha / max(1, arms - 1)


def shoppers_needed(baseline_rate, minimum_lift, arms, alpha=ALPHA, power=POWER):
    """Shoppers per arm to find a relative change of `minimum_lift` from `baseline_rate` with `power`,
    two-sided, at the Bonferroni level of `arms - 1` comparisons (two-proportion z-test)."""
    p0 = float(baseline_rate)
    if not 0 < p0 < 1:
        raise ValueError("baseline_rate: a fraction between 0 and 1")
    if arms < 2:
        raise ValueError("arms: an experiment needs at least two arms")
    p1 = min(p0 * (1 + float(minimum_lift)), 0.9999)
    if p1 == p0:
        raise ValueError("minimum_lift: must change the rate")
    z_alpha = _NORMAL.inv_cdf(1 - comparison_alpha(arms, alpha) / 2)
    z_power = _NORMAL.inv_cdf(power)
    mean = (p0 + p1) / 2
    spread = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
    return math.ceil(spread**2 / (p1 - p0) ** 2)


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


def rate(successes, n, alpha=ALPHA):
    """A rate with its Wilson interval; None without shoppers."""
    if n == 0:
        return None
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def mean(values, alpha=ALPHA):
    """A mean (revenue per shopper) with its normal-approximation interval; None without shoppers."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return None
    centre = float(values.mean())
    half = _NORMAL.inv_cdf(1 - alpha / 2) * _standard_error(values)
    return Estimate(centre, centre - half, centre + half)


@dataclass(frozen=True)
class Difference:
    estimate: Estimate  # arm minus reference, with the interval at the comparison's level
    p_value: float


def difference(values, reference, alpha=ALPHA):
    """The difference of two means of per-shopper values (0/1 for rates) with a Welch z-test; for 0/1
    values this is the unpooled two-proportion test. None when either side has no shoppers."""
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if len(values) == 0 or len(reference) == 0:
        return None
    gap = float(values.mean() - reference.mean())
    error = math.hypot(_standard_error(values), _standard_error(reference))
    if error == 0:
        p_value = 1.0 if gap == 0 else 0.0
    else:
        p_value = 2 * (1 - _NORMAL.cdf(abs(gap) / error))
    half = _NORMAL.inv_cdf(1 - alpha / 2) * error
    return Difference(Estimate(gap, gap - half, gap + half), p_value)


def _standard_error(values):
    if len(values) < 2:
        return 0.0
    return float(values.std(ddof=1)) / math.sqrt(len(values))


@dataclass(frozen=True)
class Decision:
    ready: bool  # every arm reached the horizon
    winner: int | None  # the index of the winning arm; None: no winner (yet, or no difference found)
    differences: list  # per arm: Difference with the reference (None for the reference itself)


def decide(outcomes, needed, alpha=ALPHA):
    """The decision on the decisive metric. `outcomes`: per arm, the per-shopper values (0/1) of its
    shoppers whose outcome window has closed, in the order they were first exposed; arm 0 is the
    reference. Before every arm has `needed` shoppers nothing is declared. Then the first `needed`
    of each arm are compared with the reference: an arm wins when it is better at the Bonferroni
    level; when several are, the best; when the reference is better than every other arm, it wins."""
    level = comparison_alpha(len(outcomes), alpha)
    if any(len(values) < needed for values in outcomes):
        return Decision(False, None, [None] * len(outcomes))
    judged = [np.asarray(values[:needed], dtype=float) for values in outcomes]
    differences = [None] + [difference(values, judged[0], level) for values in judged[1:]]
    better = [i for i, d in enumerate(differences) if d is not None and d.p_value < level and d.estimate.value > 0]
    if better:
        return Decision(True, max(better, key=lambda i: differences[i].estimate.value), differences)
    worse = [d is not None and d.p_value < level and d.estimate.value < 0 for d in differences[1:]]
    return Decision(True, 0 if worse and all(worse) else None, differences)


def simulate(true_rates, baseline_rate, minimum_lift, shoppers_per_day, rng, shares=None, experiment_id=0):
    """One simulated experiment, looked at every day: shoppers arrive, get their arm from `bucket`,
    convert with their arm's true rate, and `decide` is asked each day (outcomes are known the same
    day). Returns (the winner declared at the first look that declared one, or None; the days it ran)."""
    arms = len(true_rates)
    shares = shares or [1] * arms
    needed = shoppers_needed(baseline_rate, minimum_lift, arms)
    outcomes, serial = [[] for _ in range(arms)], 0
    for day in range(1, 10_000):
        for _ in range(shoppers_per_day):
            arm = bucket(experiment_id, f"s{serial}", shares)
            serial += 1
            outcomes[arm].append(float(rng.random() < true_rates[arm]))
        decision = decide(outcomes, needed)
        if decision.winner is not None or decision.ready:
            return decision.winner, day
    raise RuntimeError("the simulated experiment never reached its horizon")
