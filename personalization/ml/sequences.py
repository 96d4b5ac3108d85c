"""Order lines -> per-shopper basket sequences and an item vocabulary.

A set of sequences is stored as flat arrays (like a CSR matrix: items, basket offsets, shopper
offsets), so a million order lines take tens of megabytes.
"""
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from personalization.ml.orders import order_table, prepare_frame

PAD, UNKNOWN = 0, 1
#: Vocabulary entries that are not products: padding, and every product under the minimum count.
SPECIAL_ITEMS = ("<pad>", "<unknown>")

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


def concat_ranges(starts, lengths):
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
        return np.repeat(np.arange(len(basket_ids)), length), self.items[concat_ranges(start, length)]

    def row_of(self, user_ids):
        """Row index of each of `user_ids`, -1 where the shopper is not here."""
        return pd.Index(self.user_ids).get_indexer(np.asarray(user_ids, dtype=str))

    def prefixes(self, keep):
        """The first `keep[u]` baskets of each shopper (a number or an array); shoppers left with none go."""
        keep = np.minimum(np.broadcast_to(np.asarray(keep, dtype=np.int64), (self.n_users,)), self.basket_counts)
        users = np.flatnonzero(keep > 0)
        baskets = concat_ranges(self.user_offsets[users], keep[users])
        return self._take(users, keep[users], baskets)

    def drop_last(self, n=1):
        """Each shopper's baskets but the last `n`; shoppers with `n` baskets or fewer go."""
        return self.prefixes(self.basket_counts - n)

    def subset(self, users):
        """The shoppers at rows `users`, with all their baskets."""
        users = np.asarray(users, dtype=np.int64)
        counts = self.basket_counts[users]
        return self._take(users, counts, concat_ranges(self.user_offsets[users], counts))

    def _take(self, users, counts, baskets):
        start = self.basket_offsets[baskets]
        length = self.basket_offsets[baskets + 1] - start
        return BasketSequences(
            user_ids=self.user_ids[users],
            user_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            basket_offsets=np.concatenate([[0], np.cumsum(length)]).astype(np.int64),
            items=self.items[concat_ranges(start, length)],
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
    orders, group_of_line = order_table(lines)
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

def shopper_keys(user_ids):
    """A 64-bit key of each user id (the same in every process), by which a shopper is recognised
    in a model's neighbour pool without keeping their id."""
    digest = lambda user: hashlib.blake2b(str(user).encode(), digest_size=8).digest()  # noqa: E731
    return np.array([int.from_bytes(digest(user), "little", signed=True) for user in user_ids], dtype=np.int64)

def item_categories(frame, vocabulary):
    """(n_items,) category of each vocabulary entry (its most common one in `frame`; "" if none)."""
    lines = frame if {"time", "spend"} <= set(frame.columns) else prepare_frame(frame)
    common = lines.groupby("product_id")["category"].agg(lambda c: c.mode().iloc[0] if len(c.mode()) else "")
    return common.reindex(list(vocabulary.items)).fillna("").to_numpy(dtype=object)
