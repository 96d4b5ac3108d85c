"""Training and scoring batches: the last baskets -> next basket pairs of a set of sequences
turned into tensors one batch at a time, and the targets kept sparse.
"""
from typing import NamedTuple

import numpy as np
import torch

from personalization.ml.features import Decay, history_vectors, repeat_features
from personalization.ml.sequences import PAD, SPECIAL_ITEMS, concat_ranges, shopper_keys


class BasketTargets:
    """The target baskets of a batch, kept sparse: basket `rows[j]` holds item `items[j]`."""

    def __init__(self, rows, items, size):
        self.rows, self.items, self.size = rows, items, tuple(size)  # size: (baskets, n_items)

    def __len__(self):
        return self.size[0]

    def to(self, device):
        return BasketTargets(self.rows.to(device), self.items.to(device), self.size)

    def dense(self):
        """Multi-hot (baskets x n_items)."""
        out = torch.zeros(self.size, device=self.rows.device)
        out[self.rows, self.items] = 1.0
        return out


def basket_targets(sequences, users, positions):
    """Basket number `positions[i]` of shopper `users[i]`, as BasketTargets (products only: the
    padding and unknown entries are never targets)."""
    baskets = sequences.user_offsets[np.asarray(users, dtype=np.int64)] + np.asarray(positions, dtype=np.int64)
    rows, items = sequences.basket_lines(baskets)
    known = items >= len(SPECIAL_ITEMS)
    return BasketTargets(torch.from_numpy(rows[known]), torch.from_numpy(items[known]), (len(baskets), sequences.n_items))

class NextBasketInput(NamedTuple):
    """What the next-basket models read for each shopper: the recent sequence and the whole history,
    the latter as one entry per product the shopper bought (sorted by row, then item)."""

    baskets: torch.Tensor  # (B, L, S) item indices of the last L baskets, oldest first, PAD-filled
    n_baskets: torch.Tensor  # (B,) how many baskets came before the target
    rows: torch.Tensor  # (C,) each product a shopper bought before: the shopper's row in the batch
    items: torch.Tensor  # (C,) ... its item index
    weights: torch.Tensor  # (C,) ... its time-decayed personal frequency (TIFU-KNN's)
    features: torch.Tensor  # (C, len(REPEAT_FEATURES)) ... what the repeat component reads of it
    keys: torch.Tensor  # (B,) each shopper's key (shopper_keys): never their own neighbour

    def to(self, device):
        return NextBasketInput(*(tensor.to(device) for tensor in self))

    def history(self, n_items):
        """(B, n_items) dense time-decayed personal frequency vectors."""
        out = torch.zeros(len(self.n_baskets), n_items, device=self.weights.device)
        return out.index_put_((self.rows, self.items), self.weights)


def model_inputs(sequences, users=None, upto=None, *, window, max_basket_size, decay, features=True):
    """Inputs to predict basket `upto[i]` of shopper `users[i]` (default: the basket after the last).
    Without `features`, the repeat features are left empty (C, 0): a model that reads only the
    history vector (the autoencoder) saves their cost."""
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    upto = sequences.basket_counts[users] if upto is None else np.asarray(upto, dtype=np.int64)
    if features:
        rows, items, weight, features = repeat_features(sequences, users, upto, decay)
    else:
        rows, items, weight = history_vectors(sequences, users, upto, decay)
        features = np.zeros((len(rows), 0), dtype=np.float32)
    return NextBasketInput(
        _recent_baskets(sequences, users, upto, window, max_basket_size),
        torch.from_numpy(upto.astype(np.float32)),
        torch.from_numpy(rows),
        torch.from_numpy(items),
        torch.from_numpy(weight.astype(np.float32)),
        torch.from_numpy(features),
        torch.from_numpy(shopper_keys(sequences.user_ids[users])),
    )

def _recent_baskets(sequences, users, upto, window, max_basket_size):
    """(B, L, S) item indices of the last `window` baskets before `upto`, oldest first, PAD-filled."""
    out = torch.full((len(users), window, max_basket_size), PAD, dtype=torch.long)
    if window == 0:
        return out
    slot = np.tile(np.arange(window), len(users))
    row = np.repeat(np.arange(len(users)), window)
    position = np.repeat(upto, window) - window + slot
    valid = position >= 0
    row, slot = row[valid], slot[valid]
    basket_ids = sequences.user_offsets[users][row] + position[valid]
    start = sequences.basket_offsets[basket_ids]
    length = np.minimum(sequences.basket_offsets[basket_ids + 1] - start, max_basket_size)
    lines = concat_ranges(start, length)
    rank = np.arange(len(lines)) - np.repeat(np.cumsum(length) - length, length)
    index = tuple(torch.from_numpy(a) for a in (np.repeat(row, length), np.repeat(slot, length), rank))
    out[index] = torch.from_numpy(sequences.items[lines])
    return out


def batch_indices(n, batch_size, shuffle=False, generator=None, limit=None):
    """Index arrays covering range(n) in batches; shuffled with `generator` (a numpy Generator).
    With `limit`, only the first `limit` of that order (shuffled: a random sample of the rows)."""
    order = (generator.permutation(n) if shuffle else np.arange(n))[:limit]
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class NextBasketData:
    """Every (baskets before t -> basket t) pair of every shopper, turned into tensors batch by batch."""

    def __init__(self, sequences, *, window, max_basket_size, decay, pairs=None, features=True):
        self.sequences = sequences
        self.features = features  # whether the inputs carry the repeat features (model_inputs)
        self.window = window
        self.max_basket_size = max_basket_size
        self.decay = decay
        if pairs is None:
            counts = sequences.basket_counts
            users = np.repeat(np.arange(sequences.n_users), np.maximum(counts - 1, 0))
            positions = concat_ranges(np.ones(sequences.n_users, dtype=np.int64), np.maximum(counts - 1, 0))
            pairs = np.stack([users, positions], axis=1)
        self.pairs = pairs
        if len(pairs) == 0:
            raise ValueError("no shopper has two baskets: learning the next basket needs at least one repeat shopper")

    @classmethod
    def for_model(cls, sequences, config):
        """The pairs a model with this config reads (window, basket size and decay come from it)."""
        return cls(
            sequences,
            window=config.window,
            max_basket_size=config.max_basket_size,
            decay=Decay(config.group_size, config.within_decay, config.across_decay),
            features=getattr(config, "reads_repeat_features", True),
        )

    def __len__(self):
        return len(self.pairs)

    def batch(self, index):
        users, positions = self.pairs[index, 0], self.pairs[index, 1]
        x = model_inputs(
            self.sequences,
            users,
            positions,
            window=self.window,
            max_basket_size=self.max_basket_size,
            decay=self.decay,
            features=self.features,
        )
        return x, basket_targets(self.sequences, users, positions)

    def batches(self, batch_size, shuffle=False, generator=None, limit=None):
        for index in batch_indices(len(self), batch_size, shuffle, generator, limit):
            yield self.batch(index)

    def latest(self, n):
        """The same data with only each shopper's `n` latest pairs (the baskets a next-basket model
        is asked about are each shopper's next one, after a long history)."""
        users, positions = self.pairs[:, 0], self.pairs[:, 1]
        return self._with(self.pairs[positions >= self.sequences.basket_counts[users] - n])

    def validation_split(self, seed=0):
        """(train, validation): each shopper's last pair validates, for shoppers with two pairs or more."""
        if len(self.pairs) < 2:
            raise ValueError("early stopping needs two training pairs or more; train with patience=None")
        users, positions = self.pairs[:, 0], self.pairs[:, 1]
        counts = self.sequences.basket_counts[users]
        held = (positions == counts - 1) & (counts >= 3)
        if not held.any() or held.all():
            # No shopper has three baskets: a random fifth of the pairs validates, at least one each side.
            held = np.random.default_rng(seed).random(len(self.pairs)) < 0.2
            held[0], held[-1] = True, False
        return self._with(self.pairs[~held]), self._with(self.pairs[held])

    def _with(self, pairs):
        return NextBasketData(
            self.sequences,
            window=self.window,
            max_basket_size=self.max_basket_size,
            decay=self.decay,
            pairs=pairs,
            features=self.features,
        )


class TensorData:
    """(features, labels) rows, for the small tabular models (purchase propensity)."""

    def __init__(self, features, labels):
        if len(features) == 0:
            raise ValueError("there are no rows to learn from")
        self.features = features
        self.labels = labels

    def __len__(self):
        return len(self.features)

    def batch(self, index):
        index = torch.from_numpy(np.asarray(index, dtype=np.int64))
        return self.features[index], self.labels[index]

    def batches(self, batch_size, shuffle=False, generator=None, limit=None):
        for index in batch_indices(len(self), batch_size, shuffle, generator, limit):
            yield self.batch(index)

    def validation_split(self, seed=0):
        """(train, validation): a random fifth validates."""
        held = np.random.default_rng(seed).random(len(self)) < 0.2
        if not held.any() or held.all():
            raise ValueError("too few rows to hold some out for validation")
        held = torch.from_numpy(held)
        return TensorData(self.features[~held], self.labels[~held]), TensorData(self.features[held], self.labels[held])
