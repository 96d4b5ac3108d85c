import json
import math

import numpy as np
import pandas as pd
import pytest

from personalization.ml.evaluate import (
    MODEL_NAMES,
    TIFU_GRID,
    as_table,
    candidates,
    coordinate_search,
    evaluate_all,
    leave_last_out,
    ndcg_at_k,
    predictions,
    ranking_metrics,
    recall_at_k,
    recommend,
    repeat_explore_recall,
    roc_auc,
    score_split,
    selection_metric,
    tune,
)
from personalization.ml.propensity_evaluation import evaluate_propensity
from personalization.operations.synthetic import generate_catalog, generate_histories

from .conftest import order_lines


def test_recall_counts_target_items_found_in_the_first_k():
    assert recall_at_k(["a", "b", "c", "d"], {"b", "d", "e"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "b", "c", "d"], {"b", "d", "e"}, 4) == pytest.approx(2 / 3)


def test_ndcg_discounts_hits_by_rank_over_the_ideal_ranking():
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))

    assert ndcg_at_k(["a", "b", "c", "d"], {"b", "d", "e"}, 4) == pytest.approx(expected)
    assert ndcg_at_k(["b", "d", "e"], {"b", "d", "e"}, 3) == pytest.approx(1.0)


def test_repeat_and_explore_recall_split_the_target_by_what_was_bought_before():
    ranked, target, bought = ["a", "b", "c", "d"], {"b", "d", "e"}, {"b", "x"}

    assert repeat_explore_recall(ranked, target, bought, 2) == (1.0, 0.0)
    assert repeat_explore_recall(ranked, target, bought, 4) == (1.0, 0.5)
    assert repeat_explore_recall(ranked, {"b"}, bought, 4) == (1.0, None)


def test_ranking_metrics_average_repeat_and_explore_only_over_shoppers_who_have_such_items():
    metrics = ranking_metrics(
        ranked=[["a", "b"], ["c", "d"]],
        targets=[{"a"}, {"d", "z"}],
        bought=[{"a"}, set()],
        ks=(2,),
        discovery=[["q", "r"], ["d", "q"]],
    )

    assert metrics["recall@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert metrics["repeat_recall@2"] == pytest.approx(1.0)  # only the first shopper has repeats
    assert metrics["explore_recall@2"] == pytest.approx(0.5)  # only the second has new items
    assert metrics["discovery_recall@2"] == pytest.approx(0.5)


def test_empty_target_baskets_are_refused():
    with pytest.raises(ValueError, match="empty"):
        recall_at_k(["a"], set(), 1)


def test_leave_last_out_targets_the_last_basket_and_keeps_short_histories_for_learning(tiny_frame):
    extra = order_lines({"dan": [["jam"], ["jam", "kiwi"]]})
    frame = pd.concat([tiny_frame, extra], ignore_index=True)

    test = leave_last_out(frame, min_baskets=3)
    validation = leave_last_out(frame, min_baskets=3, skip=1)

    evaluated = list(test.history.user_ids[test.users])
    assert sorted(evaluated) == ["ann", "bob", "cat"]
    ann = evaluated.index("ann")
    assert sorted(test.history.vocabulary.decode(test.targets[ann])) == ["apple", "eggs"]
    assert test.history.basket_counts[test.history.row_of(["ann", "dan"])].tolist() == [3, 2]
    assert validation.history.basket_counts[validation.history.row_of(["ann", "dan"])].tolist() == [2, 1]
    v_ann = list(validation.history.user_ids[validation.users]).index("ann")
    assert sorted(validation.history.vocabulary.decode(validation.targets[v_ann])) == ["apple", "bread", "milk"]


def test_products_first_seen_in_the_target_count_as_misses_not_as_unknown_entries():
    frame = order_lines({"u": [["a"], ["a"], ["a", "new1", "new2"]]})

    split = leave_last_out(frame)

    assert sorted(split.targets[0].tolist())[:2] == [-2, -1]


def test_too_little_data_to_evaluate_says_so(tiny_frame):
    with pytest.raises(ValueError, match="no shopper has 5 orders"):
        evaluate_all(tiny_frame, min_baskets=5)


@pytest.fixture(scope="module")
def small_store():
    return generate_histories(generate_catalog(50, seed=5), 80, seed=5)


def test_evaluate_all_gives_one_row_per_model_with_every_metric(small_store):
    results = evaluate_all(small_store, ks=(5, 10), models=MODEL_NAMES)

    assert list(results["model"]) == list(MODEL_NAMES)
    for column in ("recall@5", "ndcg@10", "repeat_recall@10", "explore_recall@5", "discovery_recall@10"):
        assert results[column].between(0, 1).all(), column
    assert results.attrs["evaluated_shoppers"] == 80
    personal = results.set_index("model").loc["personal_frequency"]
    popular = results.set_index("model").loc["popularity"]
    assert personal["recall@10"] > popular["recall@10"]


def test_predictions_give_each_shopper_n_known_products_best_first(small_store):
    best = predictions(small_store, model_name="personal_frequency", n=7)

    assert set(best) == set(small_store["user_id"])
    assert all(len(items) == 7 and len(set(items)) == 7 for items in best.values())
    assert set().union(*best.values()) <= set(small_store["product_id"])
    user = next(iter(best))
    counts = small_store[small_store["user_id"] == user].groupby("product_id")["order_id"].nunique()
    assert counts[best[user][0]] == counts.max()


def test_unknown_model_names_are_refused(small_store):
    with pytest.raises(ValueError, match="unknown model"):
        evaluate_all(small_store, models=("deep_magic",))


def test_roc_auc_matches_a_hand_count():
    # Positives 0.9 and 0.4, negatives 0.5 and 0.1: 3 of 4 pairs ordered right.
    assert roc_auc([1, 0, 1, 0], [0.9, 0.5, 0.4, 0.1]) == pytest.approx(0.75)
    assert roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_auc([1, 1], [0.1, 0.2])


def test_purchase_propensity_beats_chance_on_shoppers_it_never_saw():
    frame = generate_histories(generate_catalog(40, seed=2), 300, seed=2)

    report = evaluate_propensity(frame, horizon_days=7, seed=0)

    assert report["auc"] > 0.7
    assert 0 < report["buyer_share"] < 1 and report["test_shoppers"] > 0


def test_propensity_needs_order_times(tiny_frame):
    with pytest.raises(ValueError, match="ordered_at"):
        evaluate_propensity(tiny_frame.drop(columns=["ordered_at"]))


def test_metrics_are_numbers_not_arrays(small_store):
    results = evaluate_all(small_store, ks=(5,), models=("popularity",))

    assert isinstance(results.loc[0, "ndcg@5"], float) and np.isfinite(results.loc[0, "ndcg@5"])


def test_every_model_is_compared_with_tifu_knn_shopper_by_shopper(small_store):
    models = ("popularity", "tifu_knn", "personal_frequency")
    results = evaluate_all(small_store, ks=(10,), models=models).set_index("model")

    tifu = results.loc["tifu_knn"]
    compared = ["recall@10_vs_tifu_knn", "recall@10_vs_tifu_knn_low", "recall@10_vs_tifu_knn_high"]
    assert tifu[compared].tolist() == [0, 0, 0]
    popular = results.loc["popularity"]
    assert popular["recall@10_vs_tifu_knn"] == pytest.approx(popular["recall@10"] - tifu["recall@10"])
    assert popular["ndcg@10_vs_tifu_knn_low"] < popular["ndcg@10_vs_tifu_knn"] < popular["ndcg@10_vs_tifu_knn_high"] < 0
    assert "recall@10 vs tifu_knn" in as_table(results.reset_index())


def test_without_tifu_knn_there_is_nothing_to_compare_with(small_store):
    results = evaluate_all(small_store, ks=(10,), models=("popularity",))

    assert not [column for column in results.columns if "_vs_" in column]


def test_coordinate_search_climbs_one_parameter_at_a_time_and_measures_each_candidate_once():
    grid = [{"a": a, "b": b} for a in range(5) for b in range(5)]
    measured = []

    def measure(line):
        measured.extend((p["a"], p["b"]) for p in line)
        return [(-((p["a"] - 1) ** 2) - (p["b"] - 4) ** 2,) for p in line]

    best, seen = coordinate_search(grid, measure)

    assert best == {"a": 1, "b": 4}
    assert len(measured) == len(set(measured)) == len(seen) < len(grid)


def test_parameters_searched_together_are_measured_in_every_combination_with_each_setting():
    grid = [{"alpha": a, "decay": d} for a in (0.5, 0.7, 0.9) for d in (0.6, 0.8, 1.0)]
    best_pair = {"alpha": 0.9, "decay": 0.6}  # one step at a time from the middle, alpha would stay at 0.7
    calls = []

    def measure(line):
        calls.append(line)
        return [(1.0 if p == best_pair else 0.5 if p["alpha"] == 0.7 else 0.0,) for p in line]

    best, _ = coordinate_search(grid, measure, together=("alpha",))

    assert best == best_pair
    assert all(len(line) % 3 == 0 for line in calls)  # each decay with all three alphas, in one call


def test_coordinate_search_of_a_single_candidate_measures_it():
    best, seen = coordinate_search([{}], lambda line: [(0.5,)] * len(line))

    assert best == {} and list(seen.values()) == [(0.5,)]


def test_tuned_tifu_knn_reports_the_validation_score_its_params_get(small_store):
    validation = leave_last_out(small_store, skip=1)

    params, metrics = tune("tifu_knn", validation, ks=(10, 20))

    assert {name: params[name] for name in TIFU_GRID[0]} in TIFU_GRID
    build, _ = candidates("tifu_knn")
    again = score_split(build(params).fit(validation.history), validation, ks=(10, 20))
    assert metrics[selection_metric("tifu_knn")] == pytest.approx(again["ndcg@10"])


def test_discovery_rankings_hold_only_products_the_shopper_never_bought(small_store):
    split = leave_last_out(small_store)
    build, _ = candidates("personal_frequency")
    model = build({}).fit(split.history)

    new = recommend(model, split.history, split.users, n=10, exclude_bought=True)

    for bought, items in zip(split.bought(), new):
        assert not set(bought) & set(items)


def test_a_network_is_trained_once_its_epochs_chosen_by_early_stopping_inside_the_fit(small_store):
    results = evaluate_all(small_store, ks=(5, 10), models=("tifu_knn", "next_basket_cnn")).set_index("model")

    network = results.loc["next_basket_cnn"]
    assert np.isnan(network["validation"]) and network["tuning_seconds"] < 0.5
    assert json.loads(network["params"])["epochs"] >= 1
    assert results.loc["tifu_knn", "validation"] > 0  # the baselines are still tuned on the basket before
