"""Training: `fit(model, data, config) -> TrainResult`, seeded, on one device chosen once.

`data` is a data.NextBasketData or data.TensorData (anything with `batches()`, `validation_split()`
and `__len__`). With `patience`, the data's validation split stops training early and the best
epoch's weights are kept; without it, every pair trains for exactly `epochs` epochs (a refit).
"""
import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from personalization.ml.autoencoder import AutoencoderConfig, ShopperAutoencoder
from personalization.ml.batches import NextBasketData, TensorData
from personalization.ml.features import decayed_frequency, item_statistics, purchase_labels, shopper_features
from personalization.ml.next_basket import NextBasketCNN, NextBasketConfig
from personalization.ml.propensity import PropensityConfig, PurchasePropensity
from personalization.ml.sequences import SPECIAL_ITEMS, shopper_keys


@dataclass
class TrainConfig:
    epochs: int = 30  # the most epochs; early stopping usually ends sooner
    batch_size: int = 256
    learning_rate: float = 3e-3  # AdamW
    weight_decay: float = 1e-5
    patience: int | None = 3  # epochs without a better validation loss before stopping; None: no validation
    min_improvement: float = 1e-4  # what counts as better: the loss falls by at least this share of the best
    # The most training rows an epoch reads (a random sample each epoch); None: all of them. Keeps an
    # epoch of a large store short, so early stopping checks often and training time stays bounded.
    rows_per_epoch: int | None = 20_000
    grad_clip: float = 5.0  # max gradient norm
    # Wall-clock seconds of the whole fit, its validation passes included (and, through train_next_basket
    # and train_autoencoder, its preparation: the neighbour pool, the pairs); None: no limit. Training
    # stops before a batch that could not end, with the validation after it, within the budget (see
    # _Budget); the best epoch so far is kept.
    time_budget: float | None = None
    # Next-basket networks: learn from each shopper's this many latest (history -> basket) pairs only;
    # None: from every pair.
    recent_pairs: int | None = None
    seed: int = 0
    device: str = "auto"  # "auto": cuda when available, else cpu
    # torch CPU threads while fitting (restored after); None: torch's own choice. These networks are
    # small: on 2 cores shared with other work, 10 CNN batches of The Complete Journey took 5.5 s on
    # one thread and 31 s on two (threads waiting on each other); the demo's web server shares them.
    threads: int | None = 1


@dataclass
class EpochReport:
    """What the progress callback gets after each epoch (a management command draws a bar from it)."""

    epoch: int
    epochs: int
    train_loss: float
    validation_loss: float | None
    seconds: float


@dataclass
class TrainResult:
    model: torch.nn.Module
    best_epoch: int  # the epoch whose weights were kept
    best_validation_loss: float | None
    history: list = field(default_factory=list)  # an EpochReport per epoch run
    seconds: float = 0.0
    device: str = "cpu"

    @property
    def epochs_run(self):
        return len(self.history)


def choose_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


@torch.no_grad()
def evaluate_loss(model, data, batch_size=512, device=None):
    """Mean loss over `data` (weighted by batch size), in eval mode."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, targets in data.batches(batch_size):
        _, loss = model(x.to(device), targets.to(device))
        total += loss.item() * len(targets)
        count += len(targets)
    model.train(was_training)
    return total / max(count, 1)


def fit(model, data, config=None, progress=None, started=None):
    """Trains `model` on `data`; returns a TrainResult. `progress(EpochReport)` is called per epoch.
    `started`: the time.perf_counter() the time budget (and TrainResult.seconds) counts from; now
    when None."""
    started = time.perf_counter() if started is None else started
    config = config or TrainConfig()
    previous = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _fit(model, data, config, progress, started)
    finally:
        torch.set_num_threads(previous)


class _Budget:
    """When a fit with a time budget stops training: before a batch that could not end, with the
    validation pass after it, by the deadline. Costs are seconds per row, measured as the fit goes;
    until a validation has been timed, a validation row is taken to cost what a training row does
    (The Complete Journey's CNN, one thread: 1.5 ms a validation row, 1.7 ms a training row)."""

    def __init__(self, deadline, validation_rows):
        self.deadline, self.validation_rows = deadline, validation_rows
        self.train_cost = self.validation_cost = None

    def allows(self, rows):
        """Whether `rows` more training rows and then the validation still end by the deadline."""
        if self.deadline is None:
            return True
        if self.train_cost is None:
            return time.perf_counter() < self.deadline
        validation_cost = self.train_cost if self.validation_cost is None else self.validation_cost
        return time.perf_counter() + rows * self.train_cost + self.validation_rows * validation_cost < self.deadline


def _fit(model, data, config, progress, started):
    seed_everything(config.seed)
    device = choose_device(config.device)
    model.to(device)
    generator = np.random.default_rng(config.seed)
    if config.patience is not None:
        train_data, validation_data = data.validation_split(config.seed)
    else:
        train_data, validation_data = data, None
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    history, best_loss, best_epoch, best_state, stale = [], None, 0, None, 0
    deadline = None if config.time_budget is None else started + config.time_budget
    budget = _Budget(deadline, 0 if validation_data is None else len(validation_data))
    for epoch in range(1, config.epochs + 1):
        if history and not budget.allows(config.batch_size):
            break
        epoch_started = time.perf_counter()
        train_loss = _train_epoch(model, train_data, optimizer, config, generator, device, budget)
        validation_loss = None
        if validation_data is not None:
            validation_started = time.perf_counter()
            validation_loss = evaluate_loss(model, validation_data, device=device)
            budget.validation_cost = (time.perf_counter() - validation_started) / max(len(validation_data), 1)
        report = EpochReport(epoch, config.epochs, train_loss, validation_loss, time.perf_counter() - epoch_started)
        history.append(report)
        if progress is not None:
            progress(report)
        if validation_loss is None:
            best_epoch = epoch
            continue
        if best_loss is None or validation_loss < best_loss:
            improved = best_loss is None or validation_loss < best_loss - config.min_improvement * abs(best_loss)
            best_loss, best_epoch, stale = validation_loss, epoch, 0 if improved else stale + 1
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if stale and stale >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, best_epoch, best_loss, history, time.perf_counter() - started, str(device))


def _train_epoch(model, data, optimizer, config, generator, device, budget):
    """One epoch's mean training loss; it ends early when the budget allows no further batch (at
    least one batch runs)."""
    model.train()
    total, count = 0.0, 0
    started = time.perf_counter()
    for x, targets in data.batches(config.batch_size, shuffle=True, generator=generator, limit=config.rows_per_epoch):
        if count and not budget.allows(len(targets)):
            break
        _, loss = model(x.to(device), targets.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
        budget.train_cost = (time.perf_counter() - started) / count
    return total / max(count, 1)


# The common cases, for services and evaluation --------------------------------------------------


#: Training settings that work for each network (on the synthetic benchmark, 600 to 3000 shoppers),
#: each fit bounded in time (an epoch of The Complete Journey's 153k pairs reads 20,000 of them, 35 to
#: 95 s on 2 shared cores, its validation 4 to 10 s). The CNN's budget is the 3-minute goal less the
#: basket sequences built before it (5 to 12 s on The Complete Journey) and a batch's overrun.
NEXT_BASKET_TRAINING = TrainConfig(learning_rate=1e-2, weight_decay=1e-4, patience=3, time_budget=165.0)
AUTOENCODER_TRAINING = TrainConfig(learning_rate=1e-3, patience=5, epochs=60, time_budget=120.0)
PROPENSITY_TRAINING = TrainConfig(epochs=200, learning_rate=1e-2, patience=10)


def train_next_basket(sequences, model_config=None, train_config=None, progress=None):
    """Builds a NextBasketCNN for these sequences' vocabulary and fits it on all their pairs (the
    time budget counts from here)."""
    started = time.perf_counter()
    model_config = replace(model_config or NextBasketConfig(), n_items=sequences.n_items)
    pool = neighbour_pool(sequences, model_config)
    model_config = replace(model_config, pool_shoppers=pool.shape[0], pool_entries=pool._nnz())
    train_config = train_config or NEXT_BASKET_TRAINING
    torch.manual_seed(train_config.seed)
    model = NextBasketCNN(model_config)
    model.repeat.item_statistics.copy_(item_statistics(sequences))
    model.explored.set(most_bought(sequences, len(model.explored)))
    model.neighbours.fill(pool, shopper_keys(sequences.user_ids[pool_rows(sequences, model_config)]))
    data = NextBasketData.for_model(sequences, model_config)
    if train_config.recent_pairs:
        data = data.latest(train_config.recent_pairs)
    return fit(model, data, train_config, progress, started)


def pool_rows(sequences, config):
    """The shoppers (rows) whose vectors form the neighbour pool: all, or the most recent
    `config.max_pool_shoppers` (by their latest basket)."""
    if config.neighbours == 0:
        return np.zeros(0, dtype=np.int64)
    if sequences.n_users <= config.max_pool_shoppers:
        return np.arange(sequences.n_users)
    latest = np.nan_to_num(sequences.basket_times[sequences.user_offsets[1:] - 1], nan=-np.inf)
    return np.sort(np.argsort(-latest, kind="stable")[: config.max_pool_shoppers])


def neighbour_pool(sequences, config):
    """The time-decayed frequency vectors (sparse, pool shoppers x n_items) of the neighbour pool."""
    return decayed_frequency(sequences, pool_rows(sequences, config), decay=config.decay)


def most_bought(sequences, n):
    """The `n` products in the most baskets (ties: the lower index first)."""
    counts = np.bincount(sequences.items, minlength=sequences.n_items)
    counts[: len(SPECIAL_ITEMS)] = -1
    return np.argsort(-counts, kind="stable")[:n]


def train_autoencoder(sequences, model_config=None, train_config=None, progress=None):
    """Builds a ShopperAutoencoder for these sequences' vocabulary and fits it on the new items of
    each next basket (the time budget counts from here)."""
    started = time.perf_counter()
    model_config = replace(model_config or AutoencoderConfig(), n_items=sequences.n_items)
    train_config = train_config or AUTOENCODER_TRAINING
    torch.manual_seed(train_config.seed)
    model = ShopperAutoencoder(model_config)
    model.products.set(most_bought(sequences, len(model.products)))
    return fit(model, NextBasketData.for_model(sequences, model_config), train_config, progress, started)


def propensity_data(lines, horizon_days, cutoff=None):
    """(features frame, labels series): features at `cutoff`, label = an order in the next
    `horizon_days`. The default cutoff is `horizon_days` before the last order, so labels are known."""
    if cutoff is None:
        last = lines["time"].max()
        if pd.isna(last):
            raise ValueError("purchase propensity needs order times: the frame has no ordered_at")
        cutoff = pd.Timestamp(0, tz="UTC") + pd.Timedelta(days=float(last) - horizon_days)
    features = shopper_features(lines, cutoff)
    labels = purchase_labels(lines, cutoff, horizon_days).reindex(features.index).fillna(0.0)
    return features, labels


def train_propensity(features, labels, model_config=None, train_config=None, progress=None):
    """Fits a PurchasePropensity on a features frame and 0/1 labels (see propensity_data)."""
    if len(features) == 0:
        raise ValueError("no shopper to learn purchase propensity from")
    if labels.nunique() < 2:
        raise ValueError("purchase propensity needs shoppers who bought in the horizon and shoppers who did not")
    model_config = replace(model_config or PropensityConfig(), n_features=features.shape[1])
    train_config = train_config or PROPENSITY_TRAINING
    torch.manual_seed(train_config.seed)
    model = PurchasePropensity(model_config)
    x = torch.from_numpy(features.to_numpy(dtype=np.float32, copy=True))
    y = torch.from_numpy(labels.to_numpy(dtype=np.float32, copy=True))
    model.set_scaling(x)
    return fit(model, TensorData(x, y), train_config, progress)


__all__ = [
    "TrainConfig",
    "EpochReport",
    "TrainResult",
    "choose_device",
    "seed_everything",
    "evaluate_loss",
    "fit",
    "train_next_basket",
    "train_autoencoder",
    "propensity_data",
    "train_propensity",
    "NEXT_BASKET_TRAINING",
    "AUTOENCODER_TRAINING",
    "PROPENSITY_TRAINING",
]
