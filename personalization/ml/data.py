"""Order lines -> per-shopper basket sequences, an item vocabulary, and the tensors models learn from.

A set of sequences is stored as flat arrays (like a CSR matrix: items, basket offsets, shopper
offsets), so a million order lines take tens of megabytes; personal frequency vectors are sparse;
training pairs (last L baskets -> next basket) are turned into tensors one batch at a time.
"""
import hashlib
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

PAD, UNKNOWN = 0, 1
#: Vocabulary entries that are not products: padding, and every product under the minimum count.
SPECIAL_ITEMS = ("<pad>", "<unknown>")
#: Columns every frame of order lines needs; plus `order_number` or `ordered_at` (or both).
REQUIRED_COLUMNS = ("user_id", "order_id", "product_id")
ORDER_COLUMNS = ("ordered_at", "order_number")
_DAY = pd.Timedelta(days=1)


# Frames ---------------------------------------------------------------------------------------


def prepare_frame(frame):
    """The order lines of `frame`, checked and normalised: ids as strings, `time` in days, `spend`.

    Accepts the import format (user_id, order_id, product_id, order_number and/or ordered_at,
    optional quantity, price, category). Raises ValueError with what is missing or empty.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame of order lines, got {type(frame).__name__}")
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if not any(column in frame.columns for column in ORDER_COLUMNS):
        missing.append("order_number or ordered_at")
    if missing:
        raise ValueError(
            "order lines need the columns user_id, order_id, product_id and order_number or ordered_at; "
            f"missing: {', '.join(missing)}"
        )
    if frame.empty:
        raise ValueError("there are no order lines: the frame is empty")
    lines = pd.DataFrame(
        {column: frame[column].astype("string").astype(str) for column in REQUIRED_COLUMNS},
        index=frame.index,
    )
    usable = frame[list(REQUIRED_COLUMNS)].notna().all(axis=1).to_numpy(copy=True)
    if "ordered_at" in frame.columns:
        ordered_at = _parse_times(frame["ordered_at"])
        lines["time"] = ((ordered_at - pd.Timestamp(0, tz="UTC")) / _DAY).astype(float)
    else:
        lines["time"] = np.nan
    if "order_number" in frame.columns:
        lines["order_number"] = pd.to_numeric(frame["order_number"], errors="coerce").astype(float)
    else:
        lines["order_number"] = np.nan
    usable &= (lines["time"].notna() | lines["order_number"].notna()).to_numpy()
    quantity = pd.to_numeric(frame["quantity"], errors="coerce").fillna(1.0) if "quantity" in frame.columns else 1.0
    price = pd.to_numeric(frame["price"], errors="coerce") if "price" in frame.columns else np.nan
    lines["spend"] = (quantity * price).astype(float) if "price" in frame.columns else np.nan
    lines["category"] = frame["category"].astype("string").fillna("").astype(str) if "category" in frame.columns else ""
    lines = lines[usable].reset_index(drop=True)
    if lines.empty:
        raise ValueError("no order line has a user_id, order_id, product_id and an order time or number")
    return lines


def _parse_times(values):
    """Order times as UTC timestamps: datetimes as they are, text as ISO 8601 or any format pandas reads."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    given = values.notna() & (values.astype(str).str.strip() != "")
    if (parsed.isna() & given).any():
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    return parsed


def _orders(lines):
    """One row per order, each shopper's orders in time: columns user_id, order_id, time, order_number."""
    key = lines.groupby(["user_id", "order_id"], sort=False)
    orders = key.agg(time=("time", "min"), order_number=("order_number", "min")).reset_index()
    orders["line_group"] = np.arange(len(orders))
    orders = orders.sort_values(["user_id", "time", "order_number", "order_id"], kind="stable", na_position="first")
    return orders.reset_index(drop=True), key.ngroup().to_numpy()


def last_order_ranks(lines):
    """For each line of a prepared frame: 0 if it is in its shopper's last order, 1 second-to-last, ...;
    and, per line, how many orders its shopper has."""
    orders, group_of_line = _orders(lines)
    per_user = orders.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    count = orders.groupby("user_id", sort=False)["order_id"].transform("size").to_numpy()
    rank = np.empty(len(orders), dtype=np.int64)
    total = np.empty(len(orders), dtype=np.int64)
    rank[orders["line_group"].to_numpy()] = per_user
    total[orders["line_group"].to_numpy()] = count
    return rank[group_of_line], total[group_of_line]


# Vocabulary -----------------------------------------------------------------------------------

#: Vocabulary.encode looks up at most this many ids in a dict, more with pandas.
_DICT_ENCODE_MAX = 64


@dataclass(frozen=True)
class Vocabulary:
    """Product ids <-> item indices. Index 0 pads, index 1 stands for every unknown or rare product."""

    items: tuple  # index -> product id; the first two entries are SPECIAL_ITEMS

    def __post_init__(self):
        if tuple(self.items[: len(SPECIAL_ITEMS)]) != SPECIAL_ITEMS:
            raise ValueError("a vocabulary starts with the padding and unknown entries")
        object.__setattr__(self, "_index", pd.Index(self.items))

    @classmethod
    def build(cls, product_ids, min_count=1):
        """Products seen at least `min_count` times (as given: one entry per basket line), sorted by id."""
        counts = pd.Series(np.asarray(product_ids, dtype=str)).value_counts()
        kept = sorted(counts.index[counts.to_numpy() >= min_count])
        return cls(SPECIAL_ITEMS + tuple(kept))

    def __len__(self):
        return len(self.items)

    @property
    def n_products(self):
        return len(self.items) - len(SPECIAL_ITEMS)

    def encode(self, product_ids):
        """Item indices of `product_ids`; UNKNOWN for products not in the vocabulary."""
        if len(product_ids) <= _DICT_ENCODE_MAX:  # a shopper's handful: a dict beats building a pandas array
            positions = self._positions()
            special = len(SPECIAL_ITEMS)
            found = [positions.get(str(product_id), UNKNOWN) for product_id in product_ids]
            return np.fromiter((i if i >= special else UNKNOWN for i in found), dtype=np.int64, count=len(found))
        ids = np.asarray(product_ids, dtype=str) if len(product_ids) else np.zeros(0, dtype=str)
        index = self._index.get_indexer(ids)
        index[index < len(SPECIAL_ITEMS)] = UNKNOWN
        return index.astype(np.int64)

    def _positions(self):
        """{product id: item index}, built once per vocabulary (for encoding a few ids)."""
        positions = self.__dict__.get("_position_of")
        if positions is None:
            positions = {item: i for i, item in enumerate(self.items)}
            object.__setattr__(self, "_position_of", positions)
        return positions

    def decode(self, indices):
        return [self.items[int(i)] for i in indices]


# Basket sequences ----------------------------------------------------------------------------


def _concat_ranges(starts, lengths):
    """np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)]), without the loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return shift + np.arange(total, dtype=np.int64)


@dataclass
class BasketSequences:
    """Every shopper's baskets in time order, as flat arrays.

    Shopper u's baskets are `user_offsets[u]:user_offsets[u+1]`; basket b's items (distinct item
    indices) are `items[basket_offsets[b]:basket_offsets[b+1]]`.
    """

    user_ids: np.ndarray  # (n_users,) str
    user_offsets: np.ndarray  # (n_users + 1,) int64
    basket_offsets: np.ndarray  # (n_baskets + 1,) int64
    items: np.ndarray  # (n_lines,) int64 item indices
    basket_times: np.ndarray  # (n_baskets,) float days since 1970 (NaN when only order numbers are known)
    vocabulary: Vocabulary

    @property
    def n_users(self):
        return len(self.user_ids)

    @property
    def n_baskets(self):
        return len(self.basket_offsets) - 1

    @property
    def n_items(self):
        return len(self.vocabulary)

    @property
    def basket_counts(self):
        return np.diff(self.user_offsets)

    def baskets_of(self, user):
        """Shopper `user`'s (row index) baskets, oldest first, as arrays of item indices."""
        first, last = self.user_offsets[user], self.user_offsets[user + 1]
        return [self.items[self.basket_offsets[b] : self.basket_offsets[b + 1]] for b in range(first, last)]

    def basket_lines(self, basket_ids):
        """(position in `basket_ids`, item index) of every line of those baskets."""
        basket_ids = np.asarray(basket_ids, dtype=np.int64)
        start = self.basket_offsets[basket_ids]
        length = self.basket_offsets[basket_ids + 1] - start
        return np.repeat(np.arange(len(basket_ids)), length), self.items[_concat_ranges(start, length)]

    def row_of(self, user_ids):
        """Row index of each of `user_ids`, -1 where the shopper is not here."""
        return pd.Index(self.user_ids).get_indexer(np.asarray(user_ids, dtype=str))

    def prefixes(self, keep):
        """The first `keep[u]` baskets of each shopper (a number or an array); shoppers left with none go."""
        keep = np.minimum(np.broadcast_to(np.asarray(keep, dtype=np.int64), (self.n_users,)), self.basket_counts)
        users = np.flatnonzero(keep > 0)
        baskets = _concat_ranges(self.user_offsets[users], keep[users])
        return self._take(users, keep[users], baskets)

    def drop_last(self, n=1):
        """Each shopper's baskets but the last `n`; shoppers with `n` baskets or fewer go."""
        return self.prefixes(self.basket_counts - n)

    def subset(self, users):
        """The shoppers at rows `users`, with all their baskets."""
        users = np.asarray(users, dtype=np.int64)
        counts = self.basket_counts[users]
        return self._take(users, counts, _concat_ranges(self.user_offsets[users], counts))

    def _take(self, users, counts, baskets):
        start = self.basket_offsets[baskets]
        length = self.basket_offsets[baskets + 1] - start
        return BasketSequences(
            user_ids=self.user_ids[users],
            user_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            basket_offsets=np.concatenate([[0], np.cumsum(length)]).astype(np.int64),
            items=self.items[_concat_ranges(start, length)],
            basket_times=self.basket_times[baskets],
            vocabulary=self.vocabulary,
        )

    @classmethod
    def from_baskets(cls, baskets_by_user, vocabulary, user_ids=None):
        """Sequences from lists of baskets of item indices ({user: [[items], ...]} or a list of such lists)."""
        if isinstance(baskets_by_user, dict):
            user_ids = list(baskets_by_user) if user_ids is None else user_ids
            baskets_by_user = list(baskets_by_user.values())
        user_ids = [str(i) for i in range(len(baskets_by_user))] if user_ids is None else user_ids
        baskets = [np.unique(np.asarray(b, dtype=np.int64)) for user in baskets_by_user for b in user]
        counts = [len(user) for user in baskets_by_user]
        lengths = [len(b) for b in baskets]
        return cls(
            user_ids=np.asarray(user_ids, dtype=str),
            user_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            basket_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            items=np.concatenate(baskets).astype(np.int64) if baskets else np.zeros(0, dtype=np.int64),
            basket_times=np.full(len(baskets), np.nan),
            vocabulary=vocabulary,
        )


def build_sequences(frame, vocabulary=None, min_count=1):
    """Order lines (any frame `prepare_frame` accepts, or its result) -> BasketSequences.

    Orders are placed in time by `ordered_at`, then `order_number`. A product bought twice in one
    order counts once. Without `vocabulary`, one is built from these lines with `min_count`.
    """
    lines = frame if {"time", "spend"} <= set(frame.columns) else prepare_frame(frame)
    orders, group_of_line = _orders(lines)
    rank = np.empty(len(orders), dtype=np.int64)
    rank[orders["line_group"].to_numpy()] = np.arange(len(orders))
    basket = rank[group_of_line]
    distinct = pd.DataFrame({"basket": basket, "product_id": lines["product_id"].to_numpy()}).drop_duplicates()
    distinct = distinct.sort_values("basket", kind="stable")
    if vocabulary is None:
        vocabulary = Vocabulary.build(distinct["product_id"].to_numpy(), min_count=min_count)
    user_codes, user_ids = pd.factorize(orders["user_id"])  # orders are sorted by user: codes ascend
    user_counts = np.bincount(user_codes, minlength=len(user_ids))
    basket_sizes = np.bincount(distinct["basket"].to_numpy(), minlength=len(orders))
    return BasketSequences(
        user_ids=np.asarray(user_ids, dtype=str),
        user_offsets=np.concatenate([[0], np.cumsum(user_counts)]).astype(np.int64),
        basket_offsets=np.concatenate([[0], np.cumsum(basket_sizes)]).astype(np.int64),
        items=vocabulary.encode(distinct["product_id"].to_numpy()),
        basket_times=orders["time"].to_numpy(dtype=float),
        vocabulary=vocabulary,
    )


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
    baskets = _concat_ranges(first, n)
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


def model_inputs(sequences, users=None, upto=None, *, window, max_basket_size, decay):
    """Inputs to predict basket `upto[i]` of shopper `users[i]` (default: the basket after the last)."""
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    upto = sequences.basket_counts[users] if upto is None else np.asarray(upto, dtype=np.int64)
    rows, items, weight, features = repeat_features(sequences, users, upto, decay)
    return NextBasketInput(
        _recent_baskets(sequences, users, upto, window, max_basket_size),
        torch.from_numpy(upto.astype(np.float32)),
        torch.from_numpy(rows),
        torch.from_numpy(items),
        torch.from_numpy(weight.astype(np.float32)),
        torch.from_numpy(features),
        torch.from_numpy(shopper_keys(sequences.user_ids[users])),
    )


def shopper_keys(user_ids):
    """A 64-bit key of each user id (the same in every process), by which a shopper is recognised
    in a model's neighbour pool without keeping their id."""
    digest = lambda user: hashlib.blake2b(str(user).encode(), digest_size=8).digest()  # noqa: E731
    return np.array([int.from_bytes(digest(user), "little", signed=True) for user in user_ids], dtype=np.int64)


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
    lines = _concat_ranges(start, length)
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

    def __init__(self, sequences, *, window, max_basket_size, decay, pairs=None):
        self.sequences = sequences
        self.window = window
        self.max_basket_size = max_basket_size
        self.decay = decay
        if pairs is None:
            counts = sequences.basket_counts
            users = np.repeat(np.arange(sequences.n_users), np.maximum(counts - 1, 0))
            positions = _concat_ranges(np.ones(sequences.n_users, dtype=np.int64), np.maximum(counts - 1, 0))
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
        )

    def __len__(self):
        return len(self.pairs)

    def batch(self, index):
        users, positions = self.pairs[index, 0], self.pairs[index, 1]
        x = model_inputs(
            self.sequences, users, positions, window=self.window, max_basket_size=self.max_basket_size, decay=self.decay
        )
        return x, basket_targets(self.sequences, users, positions)

    def batches(self, batch_size, shuffle=False, generator=None, limit=None):
        for index in batch_indices(len(self), batch_size, shuffle, generator, limit):
            yield self.batch(index)

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
            self.sequences, window=self.window, max_basket_size=self.max_basket_size, decay=self.decay, pairs=pairs
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


def item_categories(frame, vocabulary):
    """(n_items,) category of each vocabulary entry (its most common one in `frame`; "" if none)."""
    lines = frame if {"time", "spend"} <= set(frame.columns) else prepare_frame(frame)
    common = lines.groupby("product_id")["category"].agg(lambda c: c.mode().iloc[0] if len(c.mode()) else "")
    return common.reindex(list(vocabulary.items)).fillna("").to_numpy(dtype=object)


def to_days(timestamp):
    """Days since 1970 (UTC) of a timestamp; naive timestamps are taken as UTC."""
    timestamp = pd.Timestamp(timestamp)
    timestamp = timestamp.tz_localize("UTC") if timestamp.tzinfo is None else timestamp.tz_convert("UTC")
    return (timestamp - pd.Timestamp(0, tz="UTC")) / _DAY


def from_days(days):
    return pd.Timestamp(0, tz="UTC") + float(days) * _DAY


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


def data_window(frame):
    """What a model was trained on: shoppers, orders, lines and the first and last order time."""
    lines = frame if {"time", "spend"} <= set(frame.columns) else prepare_frame(frame)
    times = lines["time"].dropna()
    return {
        "shoppers": int(lines["user_id"].nunique()),
        "orders": int(lines[["user_id", "order_id"]].drop_duplicates().shape[0]),
        "lines": int(len(lines)),
        "products": int(lines["product_id"].nunique()),
        "first_order_at": from_days(times.min()).isoformat() if len(times) else None,
        "last_order_at": from_days(times.max()).isoformat() if len(times) else None,
    }
