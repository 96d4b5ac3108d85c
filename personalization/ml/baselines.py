"""The baselines every learned model must beat: popularity, personal frequency, co-occurrence, TIFU-KNN.

Each one: `fit(sequences) -> self`, then `score(sequences, users) -> (len(users), n_items)` dense
scores for the next basket of those shoppers (row indices of `sequences`, which must share the
vocabulary it was fitted on); `params()` and `state()` for checkpoints, `from_state()` to rebuild.
"""
import numpy as np
import pandas as pd
import torch

from personalization.ml.data import SPECIAL_ITEMS, Decay, decayed_frequency, sparse_matrix, sparse_product

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

    def __init__(self, source="last_basket"):
        if source not in ("last_basket", "history"):
            raise ValueError('source is "last_basket" or "history"')
        self.source = source
        self.conditional = None  # sparse (n_items x n_items): P(column | row)
        self.counts = None

    def fit(self, sequences):
        rows = np.repeat(np.arange(sequences.n_baskets), np.diff(sequences.basket_offsets))
        index = torch.from_numpy(np.stack([rows, sequences.items]))
        baskets = sparse_matrix(index, torch.ones(len(rows)), (sequences.n_baskets, sequences.n_items))
        pairs = sparse_product(baskets.t().coalesce(), baskets).coalesce()
        i, j = pairs.indices()
        keep = i != j
        self.counts = _basket_counts(sequences)
        values = pairs.values()[keep] / self.counts[i[keep]].clamp(min=1.0)
        self.conditional = sparse_matrix(pairs.indices()[:, keep], values, pairs.shape)
        return self

    def score(self, sequences, users=None):
        _check_vocabulary(len(self.counts), sequences)
        users = _rows(sequences, users)
        if self.source == "history":
            weights = decayed_frequency(sequences, users, dense=True)
        else:
            weights = _last_baskets(sequences, users)
        together = sparse_product(self.conditional.t(), weights.t()).t()
        fill = self.counts / (self.counts.max() + 1.0)
        return _mask_special(torch.where(together > 0, 2.0 + together, fill.expand_as(together)))

    def params(self):
        return {"source": self.source}

    def state(self):
        return {
            "indices": self.conditional.indices(),
            "values": self.conditional.values(),
            "counts": self.counts,
        }

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

    def __init__(self, group_size=7, within_decay=0.9, across_decay=0.7, neighbours=300, alpha=0.7, chunk=512):
        self.group_size = group_size
        self.within_decay = within_decay
        self.across_decay = across_decay
        self.neighbours = neighbours
        self.alpha = alpha
        self.chunk = chunk
        self.vectors = None  # sparse (n_fitted x n_items)
        self.normalised = None
        self.user_index = None
        self.counts = None

    @property
    def decay(self):
        return Decay(self.group_size, self.within_decay, self.across_decay)

    def fit(self, sequences):
        self.vectors = decayed_frequency(sequences, decay=self.decay)
        norms = torch.zeros(sequences.n_users).index_add_(
            0, self.vectors.indices()[0], self.vectors.values().pow(2)
        ).sqrt()
        values = self.vectors.values() / norms[self.vectors.indices()[0]].clamp(min=1e-12)
        self.normalised = sparse_matrix(self.vectors.indices(), values, self.vectors.shape)
        self.user_index = pd.Index(sequences.user_ids)
        self.counts = _basket_counts(sequences)
        return self

    def score(self, sequences, users=None):
        _check_vocabulary(len(self.counts), sequences)
        users = _rows(sequences, users)
        chunks = [self._score_chunk(sequences, users[s : s + self.chunk]) for s in range(0, len(users), self.chunk)]
        return torch.cat(chunks) if chunks else torch.zeros(0, sequences.n_items)

    def _score_chunk(self, sequences, users):
        own = decayed_frequency(sequences, users, decay=self.decay, dense=True)
        n_fitted = self.vectors.shape[0]
        similarity = sparse_product(self.normalised, torch.nn.functional.normalize(own, dim=1).t()).t()
        self_rows = self.user_index.get_indexer(sequences.user_ids[users])
        known = np.flatnonzero(self_rows >= 0)
        similarity[torch.from_numpy(known), torch.from_numpy(self_rows[known])] = -np.inf
        k = min(self.neighbours, n_fitted - (len(known) > 0))
        if k > 0:
            _, nearest = similarity.topk(k, dim=1)
            rows = torch.arange(len(users)).repeat_interleave(k)
            index = torch.stack([rows, nearest.reshape(-1)])
            weights = sparse_matrix(index, torch.full((len(rows),), 1.0 / k), (len(users), n_fitted))
            neighbours = sparse_product(weights, self.vectors).to_dense()
        else:
            neighbours = torch.zeros_like(own)
        scores = self.alpha * own + (1.0 - self.alpha) * neighbours
        return _mask_special(scores + 1e-9 * self.counts / (self.counts.max() + 1.0))

    def params(self):
        return {
            "group_size": self.group_size,
            "within_decay": self.within_decay,
            "across_decay": self.across_decay,
            "neighbours": self.neighbours,
            "alpha": self.alpha,
        }

    def state(self):
        """TIFU-KNN has no weights: it is refitted from the shoppers' baskets at serving time."""
        return {}

    @classmethod
    def from_state(cls, params, state):
        return cls(**params)


BASELINES = {cls.name: cls for cls in (Popularity, PersonalFrequency, CoOccurrence, TifuKnn)}

__all__ = ["Popularity", "PersonalFrequency", "CoOccurrence", "TifuKnn", "BASELINES"]
