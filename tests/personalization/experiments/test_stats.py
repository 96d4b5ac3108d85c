"""The experiment statistics, checked by simulating shoppers through the same code the admin uses."""
import numpy as np
import pytest

from personalization.experiments import stats

# A large effect keeps the horizon small (686 shoppers per arm), so 200 experiments run quickly.
BASELINE, LIFT = 0.10, 0.5


def test_a_shopper_gets_the_same_arm_every_time_and_arms_get_their_shares():
    arms = [stats.bucket(7, f"s{n}", [20, 30, 50]) for n in range(20_000)]

    assert arms[:50] == [stats.bucket(7, f"s{n}", [20, 30, 50]) for n in range(50)]
    shares = np.bincount(arms, minlength=3) / len(arms)
    assert shares == pytest.approx([0.2, 0.3, 0.5], abs=0.015)
    # Another experiment splits the same shoppers independently.
    other = [stats.bucket(8, f"s{n}", [20, 30, 50]) for n in range(20_000)]
    assert np.mean(np.array(arms) == np.array(other)) == pytest.approx(0.2**2 + 0.3**2 + 0.5**2, abs=0.02)


def test_bad_shares_and_rates_are_refused_with_a_message():
    with pytest.raises(ValueError, match="shares"):
        stats.bucket(1, "s1", [50, 0])
    with pytest.raises(ValueError, match="baseline_rate"):
        stats.shoppers_needed(0, 0.2, 2)
    with pytest.raises(ValueError, match="arms"):
        stats.shoppers_needed(0.05, 0.2, 1)


def test_the_shoppers_needed_match_the_textbook_two_proportion_formula():
    # 5% -> 6% at 5% two-sided and 80% power: about 8,150 per arm (Fleiss without continuity correction).
    assert 8100 <= stats.shoppers_needed(0.05, 0.2, 2) <= 8200
    # A third arm makes two comparisons with the reference, each at 2.5%: more shoppers per arm.
    assert stats.shoppers_needed(0.05, 0.2, 3) > stats.shoppers_needed(0.05, 0.2, 2)


def test_nothing_is_declared_before_every_arm_reaches_the_horizon():
    better = [[0.0] * 500, [1.0] * 500]  # as lopsided as it gets

    assert stats.decide(better, needed=501) == stats.Decision(False, None, [None, None])
    assert stats.decide(better, needed=500).winner == 1


def test_the_decision_judges_only_the_first_shoppers_up_to_the_horizon():
    reference = [0.0] * 100
    later_luck = [0.0] * 100 + [1.0] * 400  # shoppers past the horizon change nothing

    assert stats.decide([reference, later_luck], needed=100).winner is None


def test_the_reference_wins_when_it_beats_every_other_arm():
    decision = stats.decide([[1.0, 0.0] * 200, [0.0] * 400, [0.0, 0.0, 0.0, 1.0] * 100], needed=400)

    assert decision.ready and decision.winner == 0


def test_intervals_cover_the_estimates():
    assert stats.rate(0, 0) is None
    estimate = stats.rate(30, 200)
    assert estimate.low < 0.15 < estimate.high
    revenue = stats.mean([0, 0, 10.0, 20.0])
    assert revenue.low < 7.5 < revenue.high


def a_a_winners(experiments=200, seed=1):
    rng = np.random.default_rng(seed)
    return [
        stats.simulate([BASELINE, BASELINE], BASELINE, LIFT, shoppers_per_day=100, rng=rng, experiment_id=n)[0]
        for n in range(experiments)
    ]


def test_over_200_a_a_experiments_looked_at_daily_at_most_7_percent_declare_a_winner():
    winners = a_a_winners()

    assert sum(winner is not None for winner in winners) / len(winners) <= 0.07


def test_an_arm_truly_better_by_the_smallest_change_is_found_about_80_percent_of_the_time():
    rng = np.random.default_rng(2)
    better = BASELINE * (1 + LIFT)
    winners = [
        stats.simulate([BASELINE, better], BASELINE, LIFT, shoppers_per_day=100, rng=rng, experiment_id=n)[0]
        for n in range(200)
    ]

    found = sum(winner == 1 for winner in winners) / len(winners)
    assert found >= 0.7
    assert 0 not in winners  # the worse arm never wins


def test_a_no_recommendations_control_that_loses_is_found_among_three_arms():
    rng = np.random.default_rng(3)
    rates = [BASELINE, BASELINE * (1 + LIFT), BASELINE * 0.8]  # reference, better strategy, control
    winners = [
        stats.simulate(rates, BASELINE, LIFT, shoppers_per_day=150, rng=rng, experiment_id=n)[0] for n in range(100)
    ]

    assert sum(winner == 1 for winner in winners) >= 70
    assert 2 not in winners
