"""A fit's time budget covers its validation passes: training stops early enough to validate in time."""
import time

import pytest
import torch

from personalization.ml.batches import TensorData
from personalization.ml.propensity import PropensityConfig, PurchasePropensity
from personalization.ml.train import TrainConfig, fit

ROW_SECONDS = 0.002  # what each row of a batch costs, training or validating


class SlowRows(TensorData):
    """Rows that cost ROW_SECONDS each to read, as a heavy network's would; the last 200 validate."""

    def batches(self, batch_size, shuffle=False, generator=None, limit=None):
        for x, y in super().batches(batch_size, shuffle, generator, limit):
            time.sleep(ROW_SECONDS * len(y))
            yield x, y

    def validation_split(self, seed=0):
        return SlowRows(self.features[:400], self.labels[:400]), SlowRows(self.features[400:], self.labels[400:])


@pytest.fixture(autouse=True)
def warm_optimizer():
    """The first optimizer a process builds spends about a second importing, outside any budget's reach."""
    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())


def slow_rows():
    x = torch.randn(600, 3)
    return SlowRows(x, (x[:, 0] > 0).float())


def test_the_fit_ends_within_its_budget_validation_included():
    # An epoch trains 400 rows (0.8 s) and validates 200 (0.4 s): validating after training until the
    # deadline would end the fit 0.4 s late.
    config = TrainConfig(epochs=5, batch_size=8, patience=10, rows_per_epoch=None, time_budget=1.0)

    result = fit(PurchasePropensity(PropensityConfig(n_features=3)), slow_rows(), config)

    assert result.seconds < 1.1
    assert result.epochs_run == 1 and result.best_validation_loss is not None


def test_the_budget_counts_from_when_the_caller_started():
    config = TrainConfig(epochs=5, batch_size=8, patience=10, rows_per_epoch=None, time_budget=1.0)
    started = time.perf_counter()
    time.sleep(0.5)  # the caller's preparation

    result = fit(PurchasePropensity(PropensityConfig(n_features=3)), slow_rows(), config, started=started)

    assert 0.5 < result.seconds < 1.1
    assert result.history[0].seconds < 0.6  # 0.1 s of training at most, then the 0.4 s validation
