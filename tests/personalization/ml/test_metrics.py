import math

import numpy as np
import pytest

from personalization.ml.metrics import mean_metrics, paired_bootstrap, shopper_metrics


def test_shopper_metrics_give_each_shopper_their_own_values_and_nan_where_undefined():
    metrics = shopper_metrics(
        ranked=np.array([[5, 6], [7, 8]]),
        targets=[np.array([5]), np.array([8, -1])],  # -1: a product the history never saw, always a miss
        bought=[np.array([5]), np.array([], dtype=np.int64)],
        ks=(2,),
        discovery=np.array([[9, 10], [8, 9]]),
    )

    np.testing.assert_allclose(metrics["recall@2"], [1.0, 0.5])
    np.testing.assert_allclose(metrics["ndcg@2"], [1.0, (1 / math.log2(3)) / (1 + 1 / math.log2(3))])
    np.testing.assert_allclose(metrics["repeat_recall@2"], [1.0, np.nan])  # the second bought nothing before
    np.testing.assert_allclose(metrics["explore_recall@2"], [np.nan, 0.5])  # the first has no new item
    np.testing.assert_allclose(metrics["discovery_recall@2"], [np.nan, 0.5])
    assert mean_metrics(metrics)["repeat_recall@2"] == 1.0


def test_shopper_metrics_read_any_ids_and_rankings_of_any_length():
    metrics = shopper_metrics([["a", "b", "c"], ["x"]], [{"c"}, {"x", "y"}], [set(), {"x"}], ks=(1, 3))

    np.testing.assert_allclose(metrics["recall@1"], [0.0, 0.5])
    np.testing.assert_allclose(metrics["recall@3"], [1.0, 0.5])
    np.testing.assert_allclose(metrics["repeat_recall@3"], [np.nan, 1.0])


def test_a_model_compared_with_itself_differs_by_exactly_nothing():
    values = np.random.default_rng(1).random(300)

    assert paired_bootstrap(values, values, resamples=500) == (0.0, 0.0, 0.0)


def test_a_clearly_better_model_has_an_interval_above_zero_around_its_mean_gain():
    rng = np.random.default_rng(2)
    reference = rng.random(400)
    better = np.clip(reference + 0.05 + rng.normal(0, 0.05, 400), 0, 1)

    mean, low, high = paired_bootstrap(better, reference, resamples=1000)

    assert 0 < low < mean < high
    assert mean == pytest.approx((better - reference).mean())


def test_pairing_sees_a_small_steady_gain_that_unpaired_spread_would_hide():
    rng = np.random.default_rng(3)
    reference = rng.random(500)  # shoppers differ a lot ...
    better = reference + 0.01  # ... but the model gains the same little on every one

    _, low, _ = paired_bootstrap(better, reference, resamples=500)

    assert low > 0.009


def test_the_bootstrap_is_seeded_and_leaves_out_shoppers_without_a_value():
    values = np.array([0.5, np.nan, 0.2, 0.9, 0.4])
    reference = np.array([0.1, 0.3, np.nan, 0.2, 0.4])

    first = paired_bootstrap(values, reference, resamples=200, seed=4)

    assert first == paired_bootstrap(values, reference, resamples=200, seed=4)
    assert first[0] == pytest.approx(np.mean([0.4, 0.7, 0.0]))
    assert 0.0 <= first[1] <= first[2] <= 0.7


def test_the_bootstrap_refuses_vectors_that_do_not_pair_up():
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([0.1, 0.2], [0.1, 0.2, 0.3])
