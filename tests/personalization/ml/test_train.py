import numpy as np
import pandas as pd
import pytest
import torch

from personalization.ml.batches import NextBasketData, TensorData
from personalization.ml.features import Decay
from personalization.ml.next_basket import NextBasketCNN, NextBasketConfig
from personalization.ml.propensity import PropensityConfig, PurchasePropensity
from personalization.ml.sequences import build_sequences
from personalization.ml.train import TrainConfig, choose_device, fit, train_next_basket, train_propensity


@pytest.fixture(scope="module")
def store(store_frame):
    return build_sequences(store_frame)


def test_progress_is_reported_after_every_epoch(store):
    reports = []

    result = train_next_basket(
        store.subset(np.arange(20)),
        NextBasketConfig(window=2, embedding_dim=8),
        TrainConfig(epochs=3, patience=None),
        progress=reports.append,
    )

    assert [r.epoch for r in reports] == [1, 2, 3] and all(r.epochs == 3 for r in reports)
    assert result.epochs_run == 3 and result.best_epoch == 3 and result.best_validation_loss is None


def test_early_stopping_keeps_the_best_epoch_when_validation_stops_improving():
    torch.manual_seed(0)
    x = torch.randn(200, 3)
    y = (x[:, 0] > 0).float()
    model = PurchasePropensity(PropensityConfig(n_features=3))

    result = fit(model, TensorData(x, y), TrainConfig(epochs=50, learning_rate=0.0, patience=2))

    assert result.epochs_run == 3 and result.best_epoch == 1


def test_the_device_is_cuda_when_there_is_one_else_cpu():
    assert choose_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert choose_device("cpu").type == "cpu"


def test_a_learning_next_basket_model_lowers_its_validation_loss(store):
    config = NextBasketConfig(n_items=store.n_items, window=2, embedding_dim=16)
    data = NextBasketData(store, window=2, max_basket_size=32, decay=Decay())
    torch.manual_seed(0)

    result = fit(NextBasketCNN(config), data, TrainConfig(epochs=4, learning_rate=1e-2, patience=4))

    losses = [r.validation_loss for r in result.history]
    assert min(losses[1:]) < losses[0]


def test_propensity_training_needs_both_buyers_and_non_buyers():
    with pytest.raises(ValueError, match="did not"):
        train_propensity(pd.DataFrame({"f": [1.0, 2.0]}), pd.Series([1.0, 1.0]))


def test_a_time_budget_ends_training_after_the_batch_that_runs_past_it(store):
    config = TrainConfig(epochs=50, patience=None, batch_size=8, rows_per_epoch=64, time_budget=0.0)

    result = train_next_basket(store.subset(np.arange(20)), NextBasketConfig(window=2, embedding_dim=8), config)

    assert result.epochs_run == 1 and result.best_epoch == 1  # one batch, then the budget is spent
    unbounded = train_next_basket(
        store.subset(np.arange(20)), NextBasketConfig(window=2, embedding_dim=8), TrainConfig(epochs=3, patience=None)
    )
    assert unbounded.epochs_run == 3


def test_fit_runs_on_its_own_thread_count_and_gives_the_callers_back():
    x = torch.randn(64, 3)
    y = (x[:, 0] > 0).float()
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit(
            PurchasePropensity(PropensityConfig(n_features=3)),
            TensorData(x, y),
            TrainConfig(epochs=2, patience=None, threads=1),
            progress=lambda report: seen.append(torch.get_num_threads()),
        )
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
