import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from personalization.ml.batches import NextBasketData, batch_indices, model_inputs
from personalization.ml.features import (
    REPEAT_FEATURES,
    Decay,
    decayed_frequency,
    item_statistics,
    purchase_labels,
    repeat_features,
    shopper_features,
    tifu_weights,
)
from personalization.ml.orders import data_window, prepare_frame
from personalization.ml.sequences import PAD, SPECIAL_ITEMS, UNKNOWN, BasketSequences, Vocabulary, build_sequences

from .conftest import order_lines


def baskets_as_ids(sequences, user_id):
    row = sequences.row_of([user_id])[0]
    return [sorted(sequences.vocabulary.decode(b)) for b in sequences.baskets_of(row)]


def test_baskets_follow_order_time_not_row_order(tiny_frame):
    shuffled = tiny_frame.sample(frac=1.0, random_state=1)

    sequences = build_sequences(shuffled)

    assert baskets_as_ids(sequences, "bob") == [["bread", "milk"], ["bread", "jam"], ["bread", "jam", "milk"]]


def test_order_number_orders_baskets_when_there_are_no_times(tiny_frame):
    frame = tiny_frame.drop(columns=["ordered_at"])
    frame["order_number"] = frame["order_number"].map({1: 40, 2: 30, 3: 20, 4: 10})

    sequences = build_sequences(frame)

    assert baskets_as_ids(sequences, "ann")[0] == ["apple", "eggs"]


def test_a_product_twice_in_one_order_counts_once():
    frame = order_lines({"u": [["tea", "tea", "milk"], ["tea"]]})

    sequences = build_sequences(frame)

    assert baskets_as_ids(sequences, "u") == [["milk", "tea"], ["tea"]]


def test_vocabulary_keeps_products_seen_min_count_times_and_maps_the_rest_to_unknown(tiny_frame):
    sequences = build_sequences(tiny_frame, min_count=4)

    assert sequences.vocabulary.items[: len(SPECIAL_ITEMS)] == SPECIAL_ITEMS
    assert set(sequences.vocabulary.items[len(SPECIAL_ITEMS) :]) == {"apple", "bread", "eggs", "milk"}
    assert list(sequences.vocabulary.encode(["jam", "apple"])) == [UNKNOWN, sequences.vocabulary.encode(["apple"])[0]]


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame(columns=["user_id", "order_id", "product_id", "order_number"]), "empty"),
        (pd.DataFrame({"user_id": ["u"], "product_id": ["p"], "order_number": [1]}), "missing: order_id"),
        (pd.DataFrame({"user_id": ["u"], "order_id": ["o"], "product_id": ["p"]}), "order_number or ordered_at"),
        ("not a frame", "DataFrame"),
    ],
)
def test_unusable_frames_raise_value_error_saying_why(frame, message):
    with pytest.raises(ValueError, match=message):
        prepare_frame(frame)


def test_training_pairs_need_a_shopper_with_two_baskets():
    sequences = build_sequences(order_lines({"u": [["tea"]], "v": [["milk"]]}))

    with pytest.raises(ValueError, match="two baskets"):
        NextBasketData(sequences, window=2, max_basket_size=4, decay=Decay())


def test_tifu_weights_follow_the_papers_grouping():
    # 3 baskets, groups of 2 counted from the latest: {b3, b2} and {b1}; k = 2 groups.
    weights = tifu_weights(distance=[0, 1, 2], n_baskets=[3, 3, 3], group_size=2, within_decay=0.5, across_decay=0.5)

    # b3: 1 / (2 * 2); b2: 0.5 / (2 * 2); b1 (older group of one): 0.5 / (1 * 2).
    np.testing.assert_allclose(weights, [0.25, 0.125, 0.25])


def test_decayed_frequency_sums_basket_weights_per_item():
    vocabulary = Vocabulary(SPECIAL_ITEMS + ("a", "b", "c"))
    sequences = BasketSequences.from_baskets([[[2, 3], [3, 4], [2, 3]]], vocabulary)

    vector = decayed_frequency(sequences, decay=Decay(2, 0.5, 0.5), dense=True)[0]

    np.testing.assert_allclose(vector.numpy(), [0, 0, 0.25 + 0.25, 0.25 + 0.125 + 0.25, 0.125])
    assert decayed_frequency(sequences, decay=None).to_dense()[0, 3] == 3


def test_model_inputs_hold_the_last_baskets_oldest_first_and_left_padded():
    vocabulary = Vocabulary(SPECIAL_ITEMS + ("a", "b", "c"))
    sequences = BasketSequences.from_baskets([[[2, 3], [4]]], vocabulary)

    x = model_inputs(sequences, window=3, max_basket_size=2, decay=Decay())

    assert x.baskets.tolist() == [[[PAD, PAD], [2, 3], [4, PAD]]]
    assert x.rows.tolist() == [0, 0, 0] and x.items.tolist() == [2, 3, 4]
    recency = x.features[:, REPEAT_FEATURES.index("inverse_recency")]
    assert recency.tolist() == [0.5, 0.5, 1.0]
    assert x.n_baskets.tolist() == [2]


def test_repeat_features_say_how_often_how_recently_and_whether_a_product_is_due():
    # Days 1, 2, 3, 8: tea every basket but the latest, milk in the first and the latest.
    sequences = build_sequences(order_lines({"u": [["tea", "milk"], ["tea"], ["tea", "jam"], ["milk"]]}))
    sequences = dataclasses.replace(sequences, basket_times=sequences.basket_times[0] + np.array([0.0, 1.0, 2.0, 7.0]))
    tea, milk, jam = sequences.vocabulary.encode(["tea", "milk", "jam"])

    rows, items, weights, features = repeat_features(sequences, decay=Decay(7, 1.0, 1.0))
    feature = {item: dict(zip(REPEAT_FEATURES, row)) for item, row in zip(items.tolist(), features.tolist())}

    assert rows.tolist() == [0, 0, 0] and items.tolist() == sorted([tea, milk, jam])
    np.testing.assert_allclose(weights[items.tolist().index(tea)], 3 / 4)  # 3 of 4 equal baskets
    assert feature[tea]["rate"] == 0.75 and feature[milk]["rate"] == 0.5
    assert feature[milk]["in_basket_1"] == 1.0 and feature[tea]["in_basket_1"] == 0.0 and feature[tea]["in_basket_2"] == 1.0
    assert feature[tea]["inverse_recency"] == 0.5 and feature[jam]["bought_once"] == 1.0
    # Tea: bought every basket, last 2 baskets ago -> twice its rhythm; days: 5 since, 1 apart.
    assert feature[tea]["log_overdue_baskets"] == pytest.approx(np.log(2.0))
    assert feature[tea]["log_days_since"] == pytest.approx(np.log1p(5.0) / 4)
    assert feature[tea]["log_overdue_days"] == pytest.approx(np.log((5.0 + 1.0 + 7.0 / 3) / 2.0))
    assert feature[jam]["log_overdue_days"] == 0.0
    assert feature[tea]["repeat_share"] == pytest.approx(1 - 3 / 6)  # 6 lines, 3 products


def test_pairs_predict_each_basket_from_the_ones_before(tiny_frame):
    sequences = build_sequences(tiny_frame)
    data = NextBasketData(sequences, window=2, max_basket_size=4, decay=Decay())

    x, targets = data.batch(np.arange(len(data)))

    assert len(data) == (4 - 1) + (3 - 1) + (3 - 1)
    assert x.baskets.shape == (len(data), 2, 4) and targets.size == (len(data), sequences.n_items)
    assert torch.all(targets.items >= len(SPECIAL_ITEMS)) and len(targets) == len(data)
    dense = targets.dense()
    assert dense.shape == (len(data), sequences.n_items) and dense.sum() == len(targets.items)
    assert torch.all(x.history(sequences.n_items)[x.rows, x.items] > 0) and torch.all(x.weights > 0)


def test_validation_holds_out_each_shoppers_last_pair(tiny_frame):
    data = NextBasketData(build_sequences(tiny_frame), window=2, max_basket_size=4, decay=Decay())

    train, validation = data.validation_split()

    assert len(train) + len(validation) == len(data)
    counts = data.sequences.basket_counts[validation.pairs[:, 0]]
    assert np.all(validation.pairs[:, 1] == counts - 1)


def test_latest_keeps_each_shoppers_latest_pairs_only(tiny_frame):
    data = NextBasketData(build_sequences(tiny_frame), window=2, max_basket_size=4, decay=Decay())

    latest = data.latest(1)

    counts = data.sequences.basket_counts
    assert sorted(latest.pairs[:, 0].tolist()) == sorted(np.flatnonzero(counts >= 2).tolist())
    assert np.all(latest.pairs[:, 1] == counts[latest.pairs[:, 0]] - 1)
    assert len(data.latest(2)) == (4 - 1 - 1) + 2 + 2 and len(data.latest(10)) == len(data)


def test_the_history_alone_is_the_repeat_features_weights_without_the_features(tiny_frame):
    sequences = build_sequences(tiny_frame)

    plain = model_inputs(sequences, window=1, max_basket_size=4, decay=Decay(), features=False)
    full = model_inputs(sequences, window=1, max_basket_size=4, decay=Decay())

    assert plain.features.shape == (len(full.rows), 0)
    assert torch.equal(plain.rows, full.rows) and torch.equal(plain.items, full.items)
    assert torch.allclose(plain.weights, full.weights)


def test_item_statistics_measure_how_often_a_product_is_bought_again():
    sequences = build_sequences(order_lines({"u": [["tea", "jam"], ["tea"], ["tea"]], "v": [["jam"], ["milk"]]}))
    tea, jam = sequences.vocabulary.encode(["tea", "jam"])

    statistics = item_statistics(sequences, prior=0.0)

    assert statistics[tea, 1] == pytest.approx(2 / 3)
    assert statistics[jam, 1] == 0.0
    assert statistics[tea, 0] > statistics[jam, 0]


def test_propensity_features_and_labels_split_at_the_cutoff(tiny_frame):
    cutoff = pd.Timestamp("2024-01-03 12:00", tz="UTC")

    features = shopper_features(tiny_frame, cutoff)
    labels = purchase_labels(tiny_frame, cutoff, horizon_days=1)

    assert features.loc["ann", "days_since_last_order"] == pytest.approx(0.5)
    assert features.loc["ann", "log_orders"] == pytest.approx(np.log1p(2))
    assert labels.to_dict() == {"ann": 1.0, "bob": 1.0, "cat": 1.0}
    assert purchase_labels(tiny_frame, cutoff + pd.Timedelta(days=1), horizon_days=1).to_dict() == {
        "ann": 1.0,
        "bob": 0.0,
        "cat": 0.0,
    }


def test_data_window_describes_the_frame(tiny_frame):
    window = data_window(tiny_frame)

    assert window["shoppers"] == 3 and window["orders"] == 10 and window["products"] == 5
    assert window["last_order_at"].startswith("2024-01-05")


def test_early_stopping_with_a_single_pair_says_how_to_train_instead():
    sequences = build_sequences(order_lines({"u": [["tea"], ["milk"]]}))
    data = NextBasketData(sequences, window=2, max_basket_size=4, decay=Decay())

    with pytest.raises(ValueError, match="patience=None"):
        data.validation_split()


def test_an_epoch_with_a_row_limit_reads_a_random_sample_in_full_batches():
    generator = np.random.default_rng(0)
    batches = list(batch_indices(1000, 64, shuffle=True, generator=generator, limit=300))
    assert [len(b) for b in batches] == [64, 64, 64, 64, 44]
    rows = np.concatenate(batches)
    assert len(set(rows.tolist())) == 300 and rows.max() < 1000
    assert not np.array_equal(np.sort(rows), np.arange(300))  # a sample, not the first rows
    assert sum(len(b) for b in batch_indices(100, 64, limit=1000)) == 100
