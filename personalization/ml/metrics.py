"""Ranking metrics of next-basket predictions, per shopper, and paired bootstrap intervals.

Per-shopper values (not only means) let two models be compared on the same shoppers: the paired
bootstrap resamples shoppers and reads the spread of the mean difference.
"""
import numpy as np
import pandas as pd

#: The metrics at each K, in table order.
METRICS = ("recall", "ndcg", "repeat_recall", "explore_recall", "discovery_recall")


def _padded(rankings, codes):
    """(n_shoppers x longest) codes of the ranked ids, -1 where a ranking is shorter."""
    if isinstance(rankings, np.ndarray) and rankings.ndim == 2:
        return codes.reshape(rankings.shape)
    lengths = np.fromiter((len(r) for r in rankings), dtype=np.int64, count=len(rankings))
    out = np.full((len(rankings), max(int(lengths.max(initial=0)), 1)), -1, dtype=np.int64)
    out[np.arange(out.shape[1]) < lengths[:, None]] = codes
    return out


def _flat(groups):
    """(shopper of each id, the ids) of a list of id sequences (or a 2-d array), as flat arrays."""
    if isinstance(groups, np.ndarray) and groups.ndim == 2:
        return np.repeat(np.arange(len(groups)), groups.shape[1]), groups.ravel()
    arrays = [np.asarray(list(g) if isinstance(g, (set, frozenset)) else g) for g in groups]
    lengths = [len(a) for a in arrays]
    kept = [a for a in arrays if len(a)]
    return np.repeat(np.arange(len(groups)), lengths), np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def _codes(id_arrays):
    """(codes of each array's ids: integers from 0, shared by all arrays; how many codes there can be).
    Integer ids are shifted, anything else is factorized."""
    present = [ids for ids in id_arrays if len(ids)]
    if all(np.issubdtype(ids.dtype, np.integer) for ids in present):
        low = min(int(ids.min()) for ids in present)
        return [ids.astype(np.int64) - low for ids in id_arrays], max(int(ids.max()) for ids in present) - low + 1
    codes, uniques = pd.factorize(np.concatenate(present))
    out, start = [], 0
    for ids in id_arrays:
        out.append(codes[start : start + len(ids)])
        start += len(ids)
    return out, len(uniques)


def _member(keys, sorted_keys):
    """Whether each of `keys` is in `sorted_keys` (an ascending array)."""
    if not len(sorted_keys):
        return np.zeros(np.shape(keys), dtype=bool)
    found = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[found] == keys


def shopper_metrics(ranked, targets, bought, ks=(10, 20), discovery=None):
    """{metric@k: (n_shoppers,) float array}: each shopper's metrics, NaN where one is undefined.

    `ranked[u]` (distinct ids, best first), `targets[u]`, `bought[u]` and optionally `discovery[u]`
    (the ranking among never-bought items) are sequences of item ids of shopper u (or 2-d arrays, a
    row per shopper). Recall@K: share of the target found in the first K; NDCG@K: binary gain
    1 / log2(rank + 1) over the ideal; repeat and explore recall (Li et al., TOIS 2023): recall over
    the target items bought before / never bought before, undefined for a shopper whose target has
    none; discovery recall: explore recall of `discovery`.
    """
    n = len(targets)
    if not n:
        raise ValueError("there are no target baskets to evaluate")
    lists = {"ranked": ranked, "target": targets, "bought": bought}
    if discovery is not None:
        lists["discovery"] = discovery
    flat = {name: _flat(groups) for name, groups in lists.items()}
    codes, size = _codes([ids for _, ids in flat.values()])
    keys = {name: shopper * size + code for (name, (shopper, _)), code in zip(flat.items(), codes)}
    target_keys = np.unique(keys["target"])
    target_size = np.bincount(target_keys // size, minlength=n)
    if (target_size == 0).any():
        raise ValueError("recall and NDCG of an empty target basket are undefined")
    bought_keys = np.sort(keys["bought"])
    repeat_size = np.bincount(target_keys[_member(target_keys, bought_keys)] // size, minlength=n)
    explore_size = target_size - repeat_size

    def hits(name):
        matrix = _padded(lists[name], keys[name])  # padding (-1) is no shopper's key
        hit = _member(matrix, target_keys)
        repeat = hit & _member(matrix, bought_keys)
        return hit, repeat, hit & ~repeat

    def share(found, size):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(size > 0, found / np.maximum(size, 1), np.nan)

    hit, repeat, explore = hits("ranked")
    discovered = hits("discovery")[2] if discovery is not None else None
    gain = 1.0 / np.log2(np.arange(hit.shape[1]) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(max(ks)) + 2.0))])
    out = {}
    for k in ks:
        out[f"recall@{k}"] = hit[:, :k].sum(axis=1) / target_size
        out[f"ndcg@{k}"] = (hit[:, :k] * gain[:k]).sum(axis=1) / ideal[np.minimum(k, target_size)]
        out[f"repeat_recall@{k}"] = share(repeat[:, :k].sum(axis=1), repeat_size)
        out[f"explore_recall@{k}"] = share(explore[:, :k].sum(axis=1), explore_size)
        if discovered is not None:
            out[f"discovery_recall@{k}"] = share(discovered[:, :k].sum(axis=1), explore_size)
    kinds = METRICS if discovery is not None else METRICS[:-1]
    return {f"{kind}@{k}": out[f"{kind}@{k}"] for k in ks for kind in kinds}


def mean_metrics(per_shopper):
    """The mean of each metric over the shoppers for whom it is defined (NaN if for none)."""
    return {
        name: float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        for name, values in per_shopper.items()
    }


def ranking_metrics(ranked, targets, bought, ks=(10, 20), discovery=None):
    """Mean metrics over shoppers (see shopper_metrics)."""
    return mean_metrics(shopper_metrics(ranked, targets, bought, ks, discovery))


def recall_at_k(ranked, target, k):
    """Share of the target basket found in the first k ranked items."""
    return shopper_metrics([list(ranked)], [list(target)], [[]], (k,))[f"recall@{k}"][0]


def ndcg_at_k(ranked, target, k):
    """Binary-relevance NDCG: sum over hits of 1 / log2(rank + 1), over the best possible sum."""
    return shopper_metrics([list(ranked)], [list(target)], [[]], (k,))[f"ndcg@{k}"][0]


def repeat_explore_recall(ranked, target, bought_before, k):
    """(repeat recall, explore recall) at k; None where the target has no such item."""
    metrics = shopper_metrics([list(ranked)], [list(target)], [list(bought_before)], (k,))
    values = metrics[f"repeat_recall@{k}"][0], metrics[f"explore_recall@{k}"][0]
    return tuple(None if np.isnan(v) else float(v) for v in values)


def paired_bootstrap(values, reference, resamples=2000, seed=0, level=0.95):
    """(mean difference, low, high): the mean of `values - reference` over shoppers and its `level`
    percentile interval from `resamples` resamplings of the shoppers with replacement (seeded, so
    every model meets the same resamples). Shoppers for whom either value is NaN are left out."""
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if values.ndim != 1 or values.shape != reference.shape:
        raise ValueError("values and reference must be per-shopper vectors of the same length")
    difference = values - reference
    defined = np.flatnonzero(np.isfinite(difference))
    if not len(defined):
        return float("nan"), float("nan"), float("nan")
    picks = np.random.default_rng(seed).integers(0, len(difference), size=(resamples, len(difference)))
    sums = np.nan_to_num(difference)[picks].sum(axis=1)
    counts = np.isfinite(difference)[picks].sum(axis=1)
    means = sums[counts > 0] / counts[counts > 0]
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(difference[defined].mean()), float(low), float(high)


def roc_auc(labels, scores):
    """Area under the ROC curve: the chance a random positive outscores a random negative (ties 1/2)."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both positive and negative labels")
    ranks = pd.Series(np.asarray(scores, dtype=float)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


__all__ = [
    "METRICS",
    "shopper_metrics",
    "mean_metrics",
    "ranking_metrics",
    "recall_at_k",
    "ndcg_at_k",
    "repeat_explore_recall",
    "paired_bootstrap",
    "roc_auc",
]
