"""What the models read about shoppers: time-decayed personal frequency (sparse), repeat
features of each shopper's products, item statistics, and purchase-propensity features.
"""
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from personalization.ml.orders import prepare_frame, to_days
from personalization.ml.sequences import concat_ranges

# Time-decayed personal frequency -----------------------------------------------------------------


def tifu_weights(distance, n_baskets, group_size, within_decay, across_decay):
    """Weight of a basket in a TIFU-KNN personal vector (Hu et al., SIGIR 2020).

    A shopper's n baskets are cut into k = ceil(n / m) groups of m, counted from the latest (the
    oldest group may hold fewer). A group's vector is the mean of its baskets weighted r_b^p (p:
    position from the group's latest basket); the shopper's vector is the mean of the group vectors
    weighted r_g^g (g: groups from the latest). `distance` is 0 for the latest basket.
    """
    distance = np.asarray(distance, dtype=np.int64)
    n_baskets = np.asarray(n_baskets, dtype=np.int64)
    groups = -(-n_baskets // group_size)
    group = distance // group_size
    position = distance % group_size
    size = np.where(group == groups - 1, n_baskets - (groups - 1) * group_size, group_size)
    return (across_decay**group) * (within_decay**position) / (size * groups)


@dataclass(frozen=True)
class Decay:
    """How a shopper's past baskets are weighted into one personal frequency vector (TIFU-KNN's)."""

    group_size: int = 7  # m: baskets per group
    within_decay: float = 0.9  # r_b: decay between baskets of a group
    across_decay: float = 0.7  # r_g: decay between groups

    def weights(self, distance, n_baskets):
        return tifu_weights(distance, n_baskets, self.group_size, self.within_decay, self.across_decay)


def history_lines(sequences, users=None, upto=None):
    """(row, item, distance, n_baskets) of every line of `users`' first `upto` baskets.

    `users` are row indices (default: all), `upto` basket counts (default: all of them); `distance`
    counts baskets back from the latest of the prefix (0), `n_baskets` is the prefix's length.
    """
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    n = sequences.basket_counts[users] if upto is None else np.asarray(upto, dtype=np.int64)
    first = sequences.user_offsets[users]
    baskets = concat_ranges(first, n)
    row_of_basket = np.repeat(np.arange(len(users)), n)
    distance = (first + n)[row_of_basket] - 1 - baskets
    position, items = sequences.basket_lines(baskets)
    row = row_of_basket[position]
    return row, items, distance[position], n[row]


def history_entries(sequences, users=None, upto=None, decay=Decay()):
    """(row, item, weight) of the decayed frequency vectors of `users`' first `upto` baskets;
    `decay=None` weighs every basket 1 (plain counts)."""
    rows, items, distance, n_baskets = history_lines(sequences, users, upto)
    weight = np.ones(len(rows)) if decay is None else decay.weights(distance, n_baskets)
    return rows, items, weight


def history_vectors(sequences, users=None, upto=None, decay=Decay()):
    """(row, item, weight) of the decayed frequency vectors, one entry per (row, item), sorted by row
    then item (what repeat_features gives, without the features)."""
    rows, items, weight = history_entries(sequences, users, upto, decay)
    key = rows * np.int64(sequences.n_items) + items
    cells, inverse = np.unique(key, return_inverse=True)
    return cells // sequences.n_items, cells % sequences.n_items, np.bincount(inverse, weights=weight, minlength=len(cells))


def decayed_frequency(sequences, users=None, upto=None, decay=Decay(), dense=False):
    """Personal frequency vectors (len(users) x n_items), time-decayed as TIFU-KNN's.

    Sparse (coalesced COO, float32) unless `dense`; `decay=None` counts baskets instead.
    """
    rows, items, weight = history_entries(sequences, users, upto, decay)
    n_rows = sequences.n_users if users is None else len(users)
    size = (n_rows, sequences.n_items)
    weight = torch.from_numpy(weight.astype(np.float32))
    if dense:
        out = torch.zeros(size)
        return out.index_put_((torch.from_numpy(rows), torch.from_numpy(items)), weight, accumulate=True)
    return sparse_matrix(torch.from_numpy(np.stack([rows, items])), weight, size)


def sparse_matrix(indices, values, size):
    """A coalesced sparse COO matrix; duplicate entries add up."""
    return torch.sparse_coo_tensor(indices, values, size, check_invariants=False).coalesce()


def sparse_product(a, b):
    """a @ b for sparse a and sparse or dense b (sparse x sparse goes through torch's beta CSR path)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse.mm(a, b)


def item_statistics(sequences, prior=10.0):
    """(n_items, 2) per item: standardised log of the baskets holding it, and the share of those
    purchases that were repeats (the shopper had bought it before), shrunk towards the overall share
    with `prior` pseudo-purchases. What the repeat component knows about a product itself."""
    user_of_basket = np.repeat(np.arange(sequences.n_users), sequences.basket_counts)
    user_of_line = np.repeat(user_of_basket, np.diff(sequences.basket_offsets))
    key = user_of_line * sequences.n_items + sequences.items
    order = np.argsort(key, kind="stable")  # lines are in time order within a shopper
    sorted_key = key[order]
    repeat = np.zeros(len(key), dtype=bool)
    repeat[order[1:]] = sorted_key[1:] == sorted_key[:-1]
    counts = np.bincount(sequences.items, minlength=sequences.n_items).astype(np.float64)
    repeats = np.bincount(sequences.items, weights=repeat, minlength=sequences.n_items)
    overall = repeats.sum() / max(counts.sum(), 1.0)
    share = (repeats + prior * overall) / np.maximum(counts + prior, 1e-12)
    popularity = np.log1p(counts)
    popularity = (popularity - popularity.mean()) / max(popularity.std(), 1e-6)
    return torch.from_numpy(np.stack([popularity, share], axis=1).astype(np.float32))

# Model inputs ----------------------------------------------------------------------------------


#: How many of the latest baskets the repeat features mark one by one ("bought in the latest", ...).
RECENT_BASKETS = 5
#: What the repeat component reads of each product a shopper bought before (see repeat_features).
REPEAT_FEATURES = (
    "decayed_share",  # TIFU's time-decayed frequency over the shopper's largest one
    "rate",  # share of the shopper's baskets that held it
    "log_count",  # log(1 + baskets that held it)
    "inverse_recency",  # 1 / baskets since it was last bought (1: the latest basket)
    *(f"in_basket_{i}" for i in range(1, RECENT_BASKETS + 1)),  # 1 if bought in the i-th latest basket
    "log_overdue_baskets",  # log(baskets since last bought / the shopper's mean baskets between buying it)
    "log_days_since",  # log(1 + days from its last purchase to the shopper's latest basket) / 4
    "log_overdue_days",  # log((days since + 1 + their mean days between baskets) / (1 + mean days between buying it))
    "bought_once",  # 1 if bought in one basket only (the overdue features are then 0)
    "log_baskets",  # log(1 + the shopper's baskets) / 4, the same for all their products
    "repeat_share",  # share of the shopper's basket lines that re-bought something, likewise
)


def repeat_features(sequences, users=None, upto=None, decay=Decay()):
    """(row, item, weight, features) of every product each shopper bought in their first `upto`
    baskets, sorted by row then item: `weight` is its TIFU-KNN time-decayed frequency, `features`
    (n, len(REPEAT_FEATURES)) float32 what ReCANet-style repeat models read: how often, how
    recently, and whether it is due, in baskets and in days (Katz et al., SIGIR 2022). Day
    features are 0 without order times."""
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    rows, items, distance, n_baskets = history_lines(sequences, users, upto)
    n_baskets_of = sequences.basket_counts[users] if upto is None else np.asarray(upto, dtype=np.int64)
    first = sequences.user_offsets[users]
    times = np.r_[sequences.basket_times, np.nan]  # the last entry: the time of "no basket"
    latest_time = times[np.where(n_baskets_of > 0, first + n_baskets_of - 1, len(times) - 1)]
    days_ago = latest_time[rows] - sequences.basket_times[first[rows] + n_baskets - 1 - distance]
    days_ago = np.nan_to_num(days_ago, nan=0.0)
    key = rows * np.int64(sequences.n_items) + items
    order = np.argsort(key, kind="stable")
    key, distance, days_ago = key[order], distance[order], days_ago[order]
    weight = decay.weights(distance, n_baskets[order])
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=np.int64)
    cell_rows, cell_items = key[starts] // sequences.n_items, key[starts] % sequences.n_items
    count = np.diff(np.r_[starts, len(key)]).astype(np.float64)
    weight = np.add.reduceat(weight, starts) if len(key) else np.zeros(0)
    since = np.minimum.reduceat(distance, starts) + 1.0 if len(key) else np.zeros(0)
    oldest = np.maximum.reduceat(distance, starts) + 1.0 if len(key) else np.zeros(0)
    days_since = np.minimum.reduceat(days_ago, starts) if len(key) else np.zeros(0)
    days_first = np.maximum.reduceat(days_ago, starts) if len(key) else np.zeros(0)
    recent = np.where(distance < RECENT_BASKETS, np.left_shift(1, np.minimum(distance, RECENT_BASKETS)), 0)
    recent = np.bitwise_or.reduceat(recent, starts) if len(key) else np.zeros(0, dtype=np.int64)
    shopper_baskets = n_baskets_of[cell_rows].astype(np.float64)
    once = count == 1
    gaps = np.maximum(count - 1.0, 1.0)
    span_days = np.nan_to_num(latest_time - times[np.where(n_baskets_of > 0, first, len(times) - 1)], nan=0.0)
    basket_gap = span_days / np.maximum(n_baskets_of - 1, 1)
    largest = np.zeros(len(users))
    np.maximum.at(largest, cell_rows, weight)
    lines = np.bincount(rows, minlength=len(users)).astype(np.float64)
    distinct = np.bincount(cell_rows, minlength=len(users)).astype(np.float64)
    repeat_share = 1.0 - distinct / np.maximum(lines, 1.0)
    columns = [
        weight / np.maximum(largest[cell_rows], 1e-12),
        count / shopper_baskets,
        np.log1p(count),
        1.0 / since,
        *(((recent >> i) & 1).astype(np.float64) for i in range(RECENT_BASKETS)),
        np.where(once, 0.0, np.log(since * gaps / np.maximum(oldest - since, 1.0))),
        np.log1p(days_since) / 4.0,
        np.where(once, 0.0, np.log((days_since + 1.0 + basket_gap[cell_rows]) / (1.0 + (days_first - days_since) / gaps))),
        once.astype(np.float64),
        np.log1p(shopper_baskets) / 4.0,
        repeat_share[cell_rows],
    ]
    return cell_rows, cell_items, weight, np.stack(columns, axis=1).astype(np.float32)

# Purchase propensity --------------------------------------------------------------------------

#: Features of a shopper at a moment, from their orders before it (recency, frequency, monetary).
PROPENSITY_FEATURES = (
    "days_since_last_order",
    "log_orders",
    "orders_last_30_days",
    "orders_last_90_days",
    "log_tenure_days",
    "log_mean_days_between_orders",
    "recency_over_rhythm",
    "log_spend",
    "log_mean_basket_value",
    "mean_basket_size",
)


def shopper_features(frame, at):
    """PROPENSITY_FEATURES of each shopper with an order before `at` (a timestamp), indexed by user_id."""
    lines = frame if {"time", "spend"} <= set(frame.columns) else prepare_frame(frame)
    if lines["time"].isna().all():
        raise ValueError("purchase propensity needs order times: the frame has no ordered_at")
    at_days = to_days(at)
    lines = lines[lines["time"] < at_days]
    if lines.empty:
        raise ValueError("no shopper has an order before the cutoff")
    orders = lines.groupby(["user_id", "order_id"], sort=False).agg(
        time=("time", "min"), value=("spend", "sum"), size=("product_id", "size")
    )
    by_user = orders.groupby(level="user_id", sort=True)
    first, last, count = by_user["time"].min(), by_user["time"].max(), by_user["time"].size()
    age = at_days - orders["time"]
    tenure = at_days - first
    rhythm = ((last - first) / (count - 1).where(count > 1)).fillna(tenure.clip(lower=1.0))
    features = pd.DataFrame(
        {
            "days_since_last_order": at_days - last,
            "log_orders": np.log1p(count),
            "orders_last_30_days": (age <= 30).groupby(level="user_id").sum(),
            "orders_last_90_days": (age <= 90).groupby(level="user_id").sum(),
            "log_tenure_days": np.log1p(tenure),
            "log_mean_days_between_orders": np.log1p(rhythm),
            "recency_over_rhythm": (at_days - last) / rhythm.clip(lower=1.0),
            "log_spend": np.log1p(by_user["value"].sum().fillna(0.0)),
            "log_mean_basket_value": np.log1p(by_user["value"].mean().fillna(0.0)),
            "mean_basket_size": by_user["size"].mean(),
        }
    )
    return features[list(PROPENSITY_FEATURES)].astype(float).fillna(0.0)


def purchase_labels(frame, cutoff, horizon_days):
    """1.0 for each shopper with an order in (cutoff, cutoff + horizon_days], else 0.0; by user_id."""
    lines = frame if {"time", "spend"} <= set(frame.columns) else prepare_frame(frame)
    start = to_days(cutoff)
    inside = (lines["time"] > start) & (lines["time"] <= start + horizon_days)
    buyers = set(lines.loc[inside, "user_id"])
    users = lines["user_id"].drop_duplicates().sort_values()
    return pd.Series([float(u in buyers) for u in users], index=pd.Index(users, name="user_id"))
