"""The baselines every learned model must beat: popularity, personal frequency, co-occurrence, TIFU-KNN.

Each one: `fit(sequences) -> self`, then `score(sequences, users) -> (len(users), n_items)` dense
scores for the next basket of those shoppers (row indices of `sequences`, which must share the
vocabulary it was fitted on); `params()` and `state()` for checkpoints, `from_state()` to rebuild.
"""
import warnings

import numpy as np
import pandas as pd
import torch

from personalization.ml.features import Decay, decayed_frequency, sparse_matrix, sparse_product
from personalization.ml.sequences import SPECIAL_ITEMS

_MASKED = -1e9


def _mask_special(scores):
    scores[:, : len(SPECIAL_ITEMS)] = _MASKED
    return scores


def _rows(sequences, users):
    return np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)


def _basket_counts(sequences):
    """How many baskets hold each item (n_items,)."""
    counts = np.bincount(sequences.items, minlength=sequences.n_items).astype(np.float32)
    return torch.from_numpy(counts)


def _check_vocabulary(fitted_items, sequences):
    if fitted_items != sequences.n_items:
        raise ValueError(
            f"these baskets use a vocabulary of {sequences.n_items} entries; the model was fitted on {fitted_items}"
        )


def _csr(matrix):
    """A sparse COO matrix in the CSR layout, for products with a dense matrix (torch's CSR x CSR
    product leaks memory on the CPU: pytorch/pytorch#109445, so sparse x sparse stays COO)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return matrix.to_sparse_csr()


def _unit_rows(matrix):
    """A sparse COO matrix with each row scaled to unit length (empty rows stay empty)."""
    rows = matrix.indices()[0]
    norms = torch.zeros(matrix.shape[0]).index_add_(0, rows, matrix.values().pow(2)).sqrt()
    values = matrix.values() / norms[rows].clamp(min=1e-12)
    coalesced = matrix.is_coalesced()
    return torch.sparse_coo_tensor(matrix.indices(), values, matrix.shape, is_coalesced=coalesced, check_invariants=False)


def _last_baskets(sequences, users):
    """Multi-hot (len(users) x n_items) of each shopper's latest basket."""
    rows, items = sequences.basket_lines(sequences.user_offsets[users + 1] - 1)
    out = torch.zeros(len(users), sequences.n_items)
    out[torch.from_numpy(rows), torch.from_numpy(items)] = 1.0
    return out


class Popularity:
    """Everyone gets the items in the most baskets ("G-TopFreq")."""

    name = "popularity"

    def __init__(self):
        self.counts = None

    def fit(self, sequences):
        self.counts = _basket_counts(sequences)
        return self

    def score(self, sequences, users=None):
        _check_vocabulary(len(self.counts), sequences)
        return _mask_special(self.counts.expand(len(_rows(sequences, users)), -1).clone())

    def params(self):
        return {}

    def state(self):
        return {"counts": self.counts}

    @classmethod
    def from_state(cls, params, state):
        model = cls(**params)
        model.counts = state["counts"]
        return model


class PersonalFrequency(Popularity):
    """The shopper's own items by how many of their baskets held them; ties and the rest by popularity
    ("P-TopFreq" with popularity fill)."""

    name = "personal_frequency"

    def score(self, sequences, users=None):
        _check_vocabulary(len(self.counts), sequences)
        own = decayed_frequency(sequences, _rows(sequences, users), decay=None, dense=True)
        return _mask_special(own + self.counts / (self.counts.max() + 1.0))


class CoOccurrence:
    """"Bought together": items that share baskets with the shopper's last basket (or whole history).

    score_i = sum_j w_j P(i | j), P(i | j) = baskets with i and j / baskets with j, w the last basket's
    items (source="last_basket") or the decayed history ("history"); items no co-occurrence reaches
    come after, by popularity.
    """

    name = "co_occurrence"
    #: Parameters that only change scoring: one fit serves every value (see score_variants).
    SCORING_PARAMS = ("source",)

    def __init__(self, source="last_basket", chunk=128):
        if source not in ("last_basket", "history"):
            raise ValueError('source is "last_basket" or "history"')
        self.source = source
        self.chunk = chunk
        self.conditional = None  # sparse (n_items x n_items): P(column | row); 0 on the diagonal
        self.counts = None

    def fit(self, sequences):
        rows = np.repeat(np.arange(sequences.n_baskets), np.diff(sequences.basket_offsets))
        index = torch.from_numpy(np.stack([sequences.items, rows]))
        by_item = sparse_matrix(index, torch.ones(len(rows)), (sequences.n_items, sequences.n_baskets))
        pairs = sparse_product(by_item, by_item.t().coalesce())
        self.counts = _basket_counts(sequences)
        i, j = pairs.indices()
        values = pairs.values() / self.counts[i].clamp(min=1.0)
        values[i == j] = 0.0  # an item is not bought "with" itself
        self.conditional = torch.sparse_coo_tensor(
            pairs.indices(), values, pairs.shape, is_coalesced=True, check_invariants=False
        )
        return self

    def score(self, sequences, users=None):
        return self.score_variants(sequences, users, [self.params()])[0]

    def score_variants(self, sequences, users, variants):
        """Scores of `users` under each of `variants` ({"source": ...}), from one fit; `chunk` shoppers
        at a time, as the products of a whole history reach a good part of the catalog."""
        _check_vocabulary(len(self.counts), sequences)
        users = _rows(sequences, users)
        fill = self.counts / (self.counts.max() + 1.0)
        out = []
        for variant in variants:
            scores = torch.empty(len(users), sequences.n_items)
            for start in range(0, len(users), self.chunk):
                rows = users[start : start + self.chunk]
                if variant["source"] == "history":
                    weights = decayed_frequency(sequences, rows)
                else:
                    weights = _last_baskets(sequences, rows).to_sparse()
                together = sparse_product(weights, self.conditional).to_dense()
                scores[start : start + len(rows)] = torch.where(together > 0, 2.0 + together, fill)
            out.append(_mask_special(scores))
        return out

    def params(self):
        return {"source": self.source}

    def state(self):
        return {"indices": self.conditional.indices(), "values": self.conditional.values(), "counts": self.counts}

    @classmethod
    def from_state(cls, params, state):
        model = cls(**params)
        n = len(state["counts"])
        model.counts = state["counts"]
        model.conditional = sparse_matrix(state["indices"], state["values"], (n, n))
        return model


class TifuKnn:
    """TIFU-KNN (Hu et al., SIGIR 2020): the shopper's time-decayed frequency vector blended with the
    mean vector of their k nearest shoppers: score = alpha * own + (1 - alpha) * neighbours.

    Vectors use TIFU's grouped decay (see data.tifu_weights). Neighbours are by cosine similarity
    among the fitted shoppers (a shopper is never their own neighbour), found in chunks so memory
    stays bounded; exact ties are broken by popularity.
    """

    name = "tifu_knn"
    #: Parameters that only change scoring: one fit and one neighbour search serve every value.
    SCORING_PARAMS = ("neighbours", "alpha")

    def __init__(self, group_size=7, within_decay=0.9, across_decay=0.7, neighbours=300, alpha=0.7, chunk=256):
        self.group_size = group_size
        self.within_decay = within_decay
        self.across_decay = across_decay
        self.neighbours = neighbours
        self.alpha = alpha
        self.chunk = chunk
        self.vectors = None  # sparse CSR (n_items x n_fitted): each fitted shopper's vector, a column
        self.normalised = None  # sparse CSR (n_fitted x n_items): the same at unit length, a row each
        self.user_index = None
        self.counts = None

    @property
    def decay(self):
        return Decay(self.group_size, self.within_decay, self.across_decay)

    def fit(self, sequences):
        vectors = decayed_frequency(sequences, decay=self.decay)
        self.vectors = _csr(vectors.t().coalesce())
        self.normalised = _csr(_unit_rows(vectors))
        self.user_index = pd.Index(sequences.user_ids)
        self.counts = _basket_counts(sequences)
        return self

    def score(self, sequences, users=None):
        return self.score_variants(sequences, users, [{"neighbours": self.neighbours, "alpha": self.alpha}])[0]

    def score_variants(self, sequences, users, variants):
        """Scores of `users` under each of `variants` ({"neighbours": k, "alpha": a}), sharing the
        similarities and the neighbours' vectors (summed from the nearest up)."""
        _check_vocabulary(len(self.counts), sequences)
        users = _rows(sequences, users)
        scores = [torch.empty(len(users), sequences.n_items) for _ in variants]
        for start in range(0, len(users), self.chunk):
            rows = users[start : start + self.chunk]
            self._score_chunk(sequences, rows, variants, [out[start : start + len(rows)] for out in scores])
        return [_mask_special(out) for out in scores]

    def _score_chunk(self, sequences, users, variants, scores):
        """Writes the scores of `users` under each variant into `scores` (one matrix per variant)."""
        own = decayed_frequency(sequences, users, decay=self.decay, dense=True)
        unit = torch.nn.functional.normalize(own, dim=1)
        similarity = sparse_product(self.normalised, unit.t()).t().contiguous()
        self_rows = self.user_index.get_indexer(sequences.user_ids[users])
        known = np.flatnonzero(self_rows >= 0)
        similarity[torch.from_numpy(known), torch.from_numpy(self_rows[known])] = -np.inf
        most = self.normalised.shape[0] - (len(known) > 0)
        wanted = sorted({min(v["neighbours"], most) for v in variants})
        nearest = similarity.topk(wanted[-1], dim=1).indices if wanted[-1] > 0 else None
        tie = 1e-9 * self.counts / (self.counts.max() + 1.0)
        summed, done = torch.zeros_like(own), 0
        for k in wanted:
            if k > done:
                summed = self._vector_sum(nearest[:, done:k]) + (summed if done else 0)
                done = k
            for variant, out in zip(variants, scores):
                if min(variant["neighbours"], most) == k:
                    torch.mul(summed, (1.0 - variant["alpha"]) / max(k, 1), out=out)
                    out.add_(own, alpha=variant["alpha"]).add_(tie)

    def _vector_sum(self, nearest):
        """(rows x n_items): the sum of the fitted vectors of each row's `nearest` shoppers."""
        picks = torch.zeros(len(nearest), self.normalised.shape[0]).scatter_(1, nearest, 1.0)
        return sparse_product(self.vectors, picks.t()).t().contiguous()  # contiguous first: adding is faster

    def params(self):
        return {
            "group_size": self.group_size,
            "within_decay": self.within_decay,
            "across_decay": self.across_decay,
            "neighbours": self.neighbours,
            "alpha": self.alpha,
        }

    def state(self):
        """The fitted shoppers' vectors (the neighbours a served shopper is compared with), their ids
        and the products' basket counts (ties)."""
        return {"vectors": self.vectors, "user_ids": self.user_index.tolist(), "counts": self.counts}

    @classmethod
    def from_state(cls, params, state):
        model = cls(**params)
        model.vectors = state["vectors"]
        model.normalised = _csr(_unit_rows(model.vectors.to_sparse_coo().t().coalesce()))
        model.user_index, model.counts = pd.Index(state["user_ids"]), state["counts"]
        return model


BASELINES = {cls.name: cls for cls in (Popularity, PersonalFrequency, CoOccurrence, TifuKnn)}

__all__ = ["Popularity", "PersonalFrequency", "CoOccurrence", "TifuKnn", "BASELINES"]
