"""Which products go together, and which product explains a recommendation: co-purchase lift.

`Related` holds, for each item of a vocabulary, its most related items by shrunk co-purchase lift,
counted over baskets, and each item's category. Lift is how much more often two products share a
basket than chance: together * baskets / (baskets of one * baskets of the other). Rare products
share a basket by chance now and then, so the lift is shrunk toward 1 by a prior of PRIOR expected
baskets: (together + PRIOR) / (expected + PRIOR). Two products are related when that is at least
MIN_LIFT (3 baskets where 1.5 were expected by chance is not enough; 3 where 0.2 were is) and they
share at least MIN_TOGETHER baskets; each item keeps its TOP_K most related (a sparse table: 68,000
products x 50 take ~30 MB).

Two uses, both given item indices of one vocabulary:
- `choose_anchors`: the shopper's product each recommendation is explained by. It must be related
  to it (a related pair, or the same category), the strongest relation wins, and no product names more
  than half of a row ("Because you often buy Kitchen Roll" on 6 of 8 picks says nothing).
- `similar_scores`: how similar each item is to a product: its learned vector's cosine, plus
  CATEGORY_WEIGHT when it is in the same category (so the same shelf comes first) and a little for
  co-purchase lift.

Pure numpy/pandas/torch; `state()` and `Related.from_state()` store it with a checkpoint.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from personalization.ml.sequences import SPECIAL_ITEMS, concat_ranges

TOP_K = 50  # related items kept per item
MIN_TOGETHER = 2  # baskets a pair must share to be counted
PRIOR = 5.0  # expected baskets of shrinkage toward lift 1
MIN_LIFT = 1.5  # the least shrunk lift of a related pair
MAX_BASKET = 100  # larger baskets (stock-ups, shop supplies) are left out of the counts
#: No anchor names more than this share of the first n items of a row (for every n; once at least).
MAX_ANCHOR_SHARE = 0.5
#: Anchor strength: log(lift) + these for the same category and the learned vectors' cosine.
ANCHOR_CATEGORY_WEIGHT = 1.0
ANCHOR_COSINE_WEIGHT = 0.1
#: Similarity: cosine + these for the same category and log(lift).
SIMILAR_CATEGORY_WEIGHT = 1.0
SIMILAR_LIFT_WEIGHT = 0.1
_PAIRS_PER_CHUNK = 4_000_000  # (item, item) pairs expanded at once while counting


@dataclass(frozen=True)
class Related:
    """Shrunk co-purchase lift of related item pairs (TOP_K per item) and each item's category.

    Item i's related items are `neighbours[indptr[i]:indptr[i + 1]]` (ascending), with `lift`."""

    indptr: np.ndarray  # (n_items + 1,) int64
    neighbours: np.ndarray  # int64
    lift: np.ndarray  # float32, >= MIN_LIFT
    categories: np.ndarray  # (n_items,) int64 code into category_names; -1: none known
    category_names: tuple = ()

    @property
    def n_items(self):
        return len(self.indptr) - 1

    @classmethod
    def empty(cls, n_items, categories=None, category_names=()):
        codes = np.full(n_items, -1, dtype=np.int64) if categories is None else np.asarray(categories, dtype=np.int64)
        zero = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(n_items + 1, dtype=np.int64), zero, zero.astype(np.float32), codes, tuple(category_names))

    @classmethod
    def from_sequences(cls, sequences, categories=None, category_names=(), **options):
        """From a BasketSequences (its baskets and vocabulary); `categories`: item_categories()."""
        return cls.from_baskets(sequences.basket_offsets, sequences.items, sequences.n_items, categories, category_names, **options)

    @classmethod
    def from_baskets(cls, basket_offsets, items, n_items, categories=None, category_names=(), *,
                     top_k=TOP_K, min_together=MIN_TOGETHER, prior=PRIOR, min_lift=MIN_LIFT, max_basket=MAX_BASKET):
        """From baskets given as flat item indices (distinct within a basket) and their offsets."""
        offsets = np.asarray(basket_offsets, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        basket = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        sizes = np.bincount(basket[items >= len(SPECIAL_ITEMS)], minlength=len(offsets) - 1)
        keep = (items >= len(SPECIAL_ITEMS)) & (sizes[basket] <= max_basket) & (sizes[basket] >= 2)
        items, basket = items[keep], basket[keep]
        related = cls.empty(n_items, categories, category_names)
        if not len(items):
            return related
        _, basket = np.unique(basket, return_inverse=True)  # baskets renumbered 0..n-1, lines stay in basket order
        size = np.bincount(basket)
        start = np.concatenate([[0], np.cumsum(size)[:-1]])
        counts = np.bincount(items, minlength=n_items).astype(np.float64)
        n_baskets = float(len(size))
        by_item = np.argsort(items, kind="stable")
        sorted_items = items[by_item]
        expanded = np.cumsum(size[basket[by_item]])  # pairs expanded up to each line, in item order
        rows, columns, values = [], [], []
        first = 0
        while first < len(by_item):
            last = int(np.searchsorted(expanded, (expanded[first - 1] if first else 0) + _PAIRS_PER_CHUNK, side="right"))
            last = max(last, first + 1)
            last = int(np.searchsorted(sorted_items, sorted_items[last - 1], side="right"))  # whole items only
            lines = by_item[first:last]
            left = np.repeat(items[lines], size[basket[lines]])
            right = items[concat_ranges(start[basket[lines]], size[basket[lines]])]
            key = np.sort(left[left != right] * n_items + right[left != right])
            boundary = np.flatnonzero(np.diff(key)) + 1
            unique = key[np.concatenate([[0], boundary])] if len(key) else key
            together = np.diff(np.concatenate([[0], boundary, [len(key)]])) if len(key) else key
            row, column = unique // n_items, unique % n_items
            enough = together >= min_together
            row, column, together = row[enough], column[enough], together[enough]
            expected = counts[row] * counts[column] / n_baskets
            lift = (together + prior) / (expected + prior)
            above = lift >= max(min_lift, np.nextafter(1, 2))
            rows.append(row[above])
            columns.append(column[above])
            values.append(lift[above].astype(np.float32))
            first = last
        return _top_per_row(np.concatenate(rows), np.concatenate(columns), np.concatenate(values), related, top_k)

    def pair_lift(self, rows, columns):
        """(len(rows), len(columns)) shrunk lift of each pair (either way round); 1 where not kept."""
        rows = np.asarray(rows, dtype=np.int64)[:, None]
        columns = np.asarray(columns, dtype=np.int64)[None, :]
        return np.maximum(self._lookup(rows, columns), self._lookup(columns, rows))

    def _lookup(self, rows, columns):
        rows, columns = np.broadcast_arrays(rows, columns)
        found = np.ones(rows.shape, dtype=np.float32)
        if not len(self.neighbours):
            return found
        keys = self._keys()
        wanted = rows * self.n_items + columns
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        hit = keys[at] == wanted
        found[hit] = self.lift[at[hit]]
        return found

    def _keys(self):
        keys = self.__dict__.get("_sorted_keys")
        if keys is None:
            row_of = np.repeat(np.arange(self.n_items, dtype=np.int64), np.diff(self.indptr))
            keys = row_of * self.n_items + self.neighbours
            object.__setattr__(self, "_sorted_keys", keys)
        return keys

    def same_category(self, rows, columns):
        """(len(rows), len(columns)) True where both items are in the same known category."""
        a = self.categories[np.asarray(rows, dtype=np.int64)][:, None]
        b = self.categories[np.asarray(columns, dtype=np.int64)][None, :]
        return (a == b) & (a >= 0)

    def lift_row(self, item):
        """(n_items,) float32: item's shrunk lift with every item (1 where not kept)."""
        row = np.ones(self.n_items, dtype=np.float32)
        span = slice(self.indptr[item], self.indptr[item + 1])
        row[self.neighbours[span]] = self.lift[span]
        return row

    def state(self):
        """Tensors and plain values only (a checkpoint's `extra`)."""
        return {
            "indptr": torch.from_numpy(self.indptr.copy()),
            "neighbours": torch.from_numpy(self.neighbours.copy()),
            "lift": torch.from_numpy(self.lift.copy()),
            "categories": torch.from_numpy(self.categories.copy()),
            "category_names": list(self.category_names),
        }

    @classmethod
    def from_state(cls, state):
        related = cls(
            indptr=state["indptr"].numpy().astype(np.int64),
            neighbours=state["neighbours"].numpy().astype(np.int64),
            lift=state["lift"].numpy().astype(np.float32),
            categories=state["categories"].numpy().astype(np.int64),
            category_names=tuple(state["category_names"]),
        )
        sizes = {int(related.indptr[-1]), len(related.neighbours), len(related.lift)}
        if len(related.categories) != related.n_items or len(sizes) != 1:
            raise ValueError("a related-products state whose arrays do not fit together")
        return related

    def reindexed(self, mapping, n_items):
        """The same relations in another vocabulary: `mapping[i]` is item i's index there (below
        len(SPECIAL_ITEMS): not there, dropped); `n_items` its size."""
        mapping = np.asarray(mapping, dtype=np.int64)
        row = mapping[np.repeat(np.arange(self.n_items), np.diff(self.indptr))]
        column = mapping[self.neighbours]
        known = (row >= len(SPECIAL_ITEMS)) & (column >= len(SPECIAL_ITEMS))
        categories = np.full(n_items, -1, dtype=np.int64)
        there = mapping >= len(SPECIAL_ITEMS)
        categories[mapping[there]] = self.categories[there]
        empty = Related.empty(n_items, categories, self.category_names)
        return _top_per_row(row[known], column[known], self.lift[known], empty, len(self.neighbours) + 1)


def _top_per_row(rows, columns, lift, empty, top_k):
    """`empty` (a Related with no pairs) holding the `top_k` highest-lift columns of each row."""
    order = np.lexsort((columns, -lift, rows))
    rows, columns, lift = rows[order], columns[order], lift[order]
    first_of_row = np.searchsorted(rows, rows, side="left")
    keep = (np.arange(len(rows)) - first_of_row) < top_k
    rows, columns, lift = rows[keep], columns[keep], lift[keep]
    order = np.lexsort((columns, rows))  # ascending columns within each row, for the lookups
    counts = np.bincount(rows, minlength=empty.n_items)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Related(indptr, columns[order].astype(np.int64), lift[order].astype(np.float32), empty.categories, empty.category_names)


def item_categories(product_ids, categories, vocabulary):
    """((n_items,) int64 category code of each vocabulary item, category names): each product's most
    common non-blank category in the order lines given (product id and category per line); -1: none."""
    frame = pd.DataFrame({"item": vocabulary.encode(np.asarray(product_ids, dtype=str)), "category": np.asarray(categories, dtype=str)})
    frame = frame[(frame["item"] >= len(SPECIAL_ITEMS)) & (frame["category"] != "")]
    counted = frame.value_counts(["item", "category"], sort=True).reset_index()
    counted = counted.sort_values(["item", "count", "category"], ascending=[True, False, True], kind="stable").drop_duplicates("item")
    codes, names = pd.factorize(counted["category"], sort=True)
    found = np.full(len(vocabulary), -1, dtype=np.int64)
    found[counted["item"].to_numpy(dtype=np.int64)] = codes
    return found, tuple(str(name) for name in names)


def choose_anchors(items, groups, vectors=None, related=None, *, needs=None, max_share=MAX_ANCHOR_SHARE):
    """The shopper's product that explains each recommended item: [(group number, anchor item)]
    per item of `items` (item indices, best first), (-1, -1) where none fits.

    `groups`: arrays of item indices (the shopper's favourites, cart, recent views), tried in turn;
    an item's anchor is never itself. With `related`, an anchor must be related to the item (a pair
    kept, or the same category); the strongest relation wins (log lift, plus
    ANCHOR_CATEGORY_WEIGHT for the same category, ANCHOR_COSINE_WEIGHT x the learned vectors' cosine).
    Without it (the method before relations), any product of the first group holding one does, the
    closest by `vectors` (None: no anchors at all). `max_share`: no anchor names more than this share
    of the first n items, for every n (but one may always name one item); None: no limit.
    `needs`: False for items explained another way (a repeat), which keep their place in the row."""
    items = np.asarray(items, dtype=np.int64)
    needs = np.ones(len(items), dtype=bool) if needs is None else np.asarray(needs, dtype=bool)
    chosen = [(-1, -1)] * len(items)
    if not len(items) or (related is None and vectors is None):
        return chosen
    strengths = []
    for group in groups:
        group = np.unique(np.asarray(group, dtype=np.int64))
        group = group[group >= len(SPECIAL_ITEMS)]
        strengths.append((group, _strength(items, group, vectors, related)) if len(group) else None)
    if related is None:  # before relations: the first group with any known product explains every item
        first = next((n for n, found in enumerate(strengths) if found is not None), None)
        strengths = [found if n == first else None for n, found in enumerate(strengths)]
    used = {}
    for position in np.flatnonzero(needs):
        cap = np.inf if max_share is None else max(1, int((position + 1) * max_share))
        for number, found in enumerate(strengths):
            if found is None:
                continue
            group, strength = found
            row = strength[position]
            for column in np.argsort(-row, kind="stable"):
                if not np.isfinite(row[column]):
                    break
                anchor = int(group[column])
                if used.get(anchor, 0) < cap:
                    used[anchor] = used.get(anchor, 0) + 1
                    chosen[position] = (number, anchor)
                    break
            if chosen[position][0] >= 0:
                break
    return chosen


def _strength(items, group, vectors, related):
    """(len(items), len(group)) how strongly each group product explains each item; -inf: not at all."""
    cosine = np.zeros((len(items), len(group)), dtype=np.float32)
    if vectors is not None:
        cosine = (vectors[torch.from_numpy(items)] @ vectors[torch.from_numpy(group)].T).numpy()
    if related is None:
        strength = cosine.astype(np.float64)
    else:
        lift = related.pair_lift(items, group).astype(np.float64)
        same = related.same_category(items, group)
        strength = np.log(lift) + ANCHOR_CATEGORY_WEIGHT * same + ANCHOR_COSINE_WEIGHT * cosine
        strength[(lift <= 1) & ~same] = -np.inf
    strength[items[:, None] == group[None, :]] = -np.inf
    return strength


def similar_scores(anchors, vectors=None, related=None, *, category_weight=SIMILAR_CATEGORY_WEIGHT, lift_weight=SIMILAR_LIFT_WEIGHT):
    """((n_items,) float32 tensor: how similar each item is to the closest of `anchors` (item
    indices), (n_items,) int64 tensor: the position in `anchors` of that anchor). The learned
    vectors' cosine (0 without vectors), plus `category_weight` for the anchor's category and
    `lift_weight` x log(lift) with it (without `related`: the cosine alone)."""
    anchors = np.asarray(anchors, dtype=np.int64)
    n_items = len(vectors) if vectors is not None else related.n_items
    scores = torch.zeros((n_items, len(anchors)))
    if vectors is not None:
        scores += vectors @ vectors[torch.from_numpy(anchors)].T
    if related is not None:
        for position, anchor in enumerate(anchors):
            same = (related.categories == related.categories[anchor]) & (related.categories[anchor] >= 0)
            extra = category_weight * same + lift_weight * np.log(related.lift_row(anchor))
            scores[:, position] += torch.from_numpy(extra.astype(np.float32))
    return scores.max(dim=1)
