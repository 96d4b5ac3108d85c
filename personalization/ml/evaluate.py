"""Leave-last-basket-out evaluation of every next-basket model, on the same split.

Shoppers with at least `min_baskets` orders are evaluated: their last basket is the target, the
rest is history. Hyper-parameters (grids for the baselines, epochs for the networks) are chosen on
the second-to-last basket (history minus the last, target the second-to-last), then each model is
refitted on the full history with them and tested on the last basket.

Metrics, averaged over evaluated shoppers: Recall@K and NDCG@K; repeat and explore recall (Li et
al., TOIS 2023: recall over the target items the shopper bought before / never bought before,
averaged over shoppers whose target has such items); discovery recall: explore recall of the
model's best K items among those the shopper never bought (a "for you" or discovery placement).
"""
import json
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from personalization.ml.baselines import CoOccurrence, PersonalFrequency, Popularity, TifuKnn
from personalization.ml.data import (
    SPECIAL_ITEMS,
    BasketSequences,
    build_sequences,
    decayed_frequency,
    history_entries,
    last_order_ranks,
    prepare_frame,
)
from personalization.ml.models import AutoencoderConfig, NextBasketConfig, score_shoppers
from personalization.ml.train import (
    AUTOENCODER_TRAINING,
    NEXT_BASKET_TRAINING,
    propensity_data,
    train_autoencoder,
    train_next_basket,
    train_propensity,
)

#: The metrics at each K, in table order.
METRICS = ("recall", "ndcg", "repeat_recall", "explore_recall", "discovery_recall")

# Metrics --------------------------------------------------------------------------------------


def recall_at_k(ranked, target, k):
    """Share of the target basket found in the first k ranked items."""
    target = set(target)
    if not target:
        raise ValueError("recall of an empty target basket is undefined")
    return len(target.intersection(list(ranked)[:k])) / len(target)


def ndcg_at_k(ranked, target, k):
    """Binary-relevance NDCG: sum over hits of 1 / log2(rank + 1), over the best possible sum."""
    target = set(target)
    if not target:
        raise ValueError("NDCG of an empty target basket is undefined")
    gain = sum(1.0 / np.log2(rank + 2) for rank, item in enumerate(list(ranked)[:k]) if item in target)
    ideal = sum(1.0 / np.log2(rank + 2) for rank in range(min(k, len(target))))
    return gain / ideal


def repeat_explore_recall(ranked, target, bought_before, k):
    """(repeat recall, explore recall) at k; None where the target has no such item."""
    target = set(target)
    repeat = target & set(bought_before)
    explore = target - repeat
    top = set(list(ranked)[:k])
    return (
        len(top & repeat) / len(repeat) if repeat else None,
        len(top & explore) / len(explore) if explore else None,
    )


def ranking_metrics(ranked, targets, bought, ks=(10, 20), discovery=None):
    """Mean metrics over shoppers: `ranked[u]`, `targets[u]`, `bought[u]` and optionally
    `discovery[u]` (the ranking among never-bought items) are sequences of item ids."""
    if not len(targets):
        raise ValueError("there are no target baskets to evaluate")
    sums, counts = {}, {}

    def add(name, value):
        if value is not None:
            sums[name] = sums.get(name, 0.0) + value
            counts[name] = counts.get(name, 0) + 1

    for u, target in enumerate(targets):
        for k in ks:
            add(f"recall@{k}", recall_at_k(ranked[u], target, k))
            add(f"ndcg@{k}", ndcg_at_k(ranked[u], target, k))
            repeat, explore = repeat_explore_recall(ranked[u], target, bought[u], k)
            add(f"repeat_recall@{k}", repeat)
            add(f"explore_recall@{k}", explore)
            if discovery is not None:
                add(f"discovery_recall@{k}", repeat_explore_recall(discovery[u], target, bought[u], k)[1])
    kinds = METRICS if discovery is not None else METRICS[:-1]
    names = [f"{kind}@{k}" for k in ks for kind in kinds]
    return {name: sums[name] / counts[name] if counts.get(name) else float("nan") for name in names}


def top_items(scores, n, exclude=None):
    """Indices (rows x n) of the n best items per row; `exclude` (bool, same shape) never ranks."""
    if exclude is not None:
        scores = scores.masked_fill(exclude, -np.inf)
    n = min(n, scores.shape[1] - len(SPECIAL_ITEMS))
    return scores.topk(n, dim=1).indices.numpy()


# The split -----------------------------------------------------------------------------------


@dataclass
class Split:
    """History to fit on, and the target basket of each evaluated shopper."""

    history: BasketSequences  # every shopper's baskets before the target (others' too, in full)
    users: np.ndarray  # row in `history` of each evaluated shopper
    targets: list  # each one's target basket: item indices; products the vocabulary lacks are negative

    def bought(self):
        """The items each evaluated shopper bought before the target (list of int arrays)."""
        rows, items, _ = history_entries(self.history, self.users, decay=None)
        order = np.argsort(rows, kind="stable")
        return np.split(items[order], np.cumsum(np.bincount(rows, minlength=len(self.users)))[:-1])


def leave_last_out(frame, min_baskets=3, skip=0, min_count=1):
    """The split whose targets are each eligible shopper's basket `skip` from the last (0: the last).

    Shoppers with fewer than `min_baskets` orders are not evaluated but their baskets (except the
    last `skip`) stay in the history, where popularity and neighbours learn from them. The vocabulary
    comes from the history alone.
    """
    if min_baskets < 2 + skip:
        raise ValueError(f"min_baskets must be at least {2 + skip} so that every target has a history")
    lines = prepare_frame(frame)
    rank, orders = last_order_ranks(lines)
    eligible = orders >= min_baskets
    target = eligible & (rank == skip)
    history_lines = lines[(rank > skip) | (~eligible & (rank >= skip))]
    if not target.any():
        raise ValueError(f"no shopper has {min_baskets} orders or more: too little data to evaluate")
    history = build_sequences(history_lines, min_count=min_count)
    target_lines = lines[target].drop_duplicates(["user_id", "product_id"])
    target_users = target_lines["user_id"].drop_duplicates().to_numpy()
    items = history.vocabulary.encode(target_lines["product_id"].to_numpy())
    unknown = items < len(SPECIAL_ITEMS)
    items[unknown] = -1 - np.arange(unknown.sum())
    grouped = pd.Series(items).groupby(target_lines["user_id"].to_numpy(), sort=False).apply(np.asarray)
    return Split(history, history.row_of(target_users), [grouped[u] for u in target_users])


# Models under evaluation --------------------------------------------------------------------------


class NeuralRecommender:
    """A next-basket network behind the baselines' fit/score interface."""

    def __init__(self, kind, model_config=None, train_config=None):
        if kind not in ("next_basket_cnn", "autoencoder"):
            raise ValueError(f"unknown network {kind!r}")
        self.name = kind
        self.model_config = model_config
        self.train_config = train_config
        self.result = None

    def fit(self, sequences):
        train = train_next_basket if self.name == "next_basket_cnn" else train_autoencoder
        self.result = train(sequences, self.model_config, self.train_config)
        return self

    def score(self, sequences, users=None):
        return score_shoppers(self.result.model, sequences, users)

    def params(self):
        return {"epochs": self.result.best_epoch}


#: Candidate settings chosen on the second-to-last basket (small on purpose: evaluation runs in minutes).
TIFU_GRID = [
    {"group_size": m, "within_decay": rb, "across_decay": rg, "neighbours": k, "alpha": a}
    for m in (3, 7)
    for rb in (0.9, 1.0)
    for rg in (0.6, 0.8, 1.0)
    for k in (50, 300)
    for a in (0.5, 0.7, 0.9)
]
#: The models evaluate_all compares, in table order. "next_basket_cnn" is the one the store serves.
MODEL_NAMES = ("popularity", "personal_frequency", "co_occurrence", "tifu_knn", "next_basket_cnn", "autoencoder")
SERVED_MODEL = "next_basket_cnn"


def candidates(name, seed=0):
    """(factory(params) -> unfitted model, list of candidate params) for a model name."""
    if name == "popularity":
        return lambda p: Popularity(), [{}]
    if name == "personal_frequency":
        return lambda p: PersonalFrequency(), [{}]
    if name == "co_occurrence":
        return lambda p: CoOccurrence(**p), [{"source": "last_basket"}, {"source": "history"}]
    if name == "tifu_knn":
        return lambda p: TifuKnn(**p), TIFU_GRID
    if name in ("next_basket_cnn", "autoencoder"):
        defaults = NEXT_BASKET_TRAINING if name == "next_basket_cnn" else AUTOENCODER_TRAINING

        def build(p):
            # Without "epochs", early stopping on the data's own validation pairs finds them; with it,
            # a refit trains on every pair for that many epochs.
            fixed = {"epochs": p["epochs"], "patience": None} if p.get("epochs") else {}
            return NeuralRecommender(name, train_config=replace(defaults, seed=seed, **fixed))

        return build, [{}]
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")


def recommend(model, sequences, users=None, n=20, exclude_bought=False, chunk=1024):
    """(len(users), n) item indices, best first, scored `chunk` shoppers at a time so memory stays
    at chunk x n_items; with `exclude_bought`, only products each shopper never bought."""
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    out = []
    for start in range(0, len(users), chunk):
        rows = users[start : start + chunk]
        scores = model.score(sequences, rows)
        exclude = decayed_frequency(sequences, rows, decay=None, dense=True) > 0 if exclude_bought else None
        out.append(top_items(scores, n, exclude))
    return np.concatenate(out) if out else np.zeros((0, n), dtype=np.int64)


def score_split(model, split, ks=(10, 20)):
    """Metrics of a fitted model on a split."""
    ranked = recommend(model, split.history, split.users, max(ks))
    discovery = recommend(model, split.history, split.users, max(ks), exclude_bought=True)
    return ranking_metrics(ranked, split.targets, split.bought(), ks, discovery)


def selection_metric(name, ks=(10, 20)):
    """What a model's params are chosen by: NDCG at the first K; discovery recall for "for you"."""
    return f"discovery_recall@{ks[0]}" if name == "autoencoder" else f"ndcg@{ks[0]}"


def tune(name, validation, ks=(10, 20), seed=0):
    """The best candidate params of a model on the validation split (see selection_metric), with
    the params a refit needs (the networks' best epoch) and that candidate's metrics."""
    build, grid = candidates(name, seed)
    best = None
    for params in grid:
        model = build(params).fit(validation.history)
        metrics = score_split(model, validation, ks)
        key = metrics[selection_metric(name, ks)]
        if best is None or key > best[0]:
            best = (key, {**params, **model.params()}, metrics)
    return best[1], best[2]


def evaluate_all(frame, ks=(10, 20), models=MODEL_NAMES, seed=0, min_baskets=3, min_count=1, progress=None):
    """One row per model: test metrics on the last basket after choosing params on the one before.

    Columns: model, the metrics at each K, "validation" (the selection metric on the second-to-last
    basket), the chosen params (JSON), seconds. `progress(name, i, n)` is called before each model.
    The result's `attrs` hold the split's sizes.
    """
    ks = tuple(sorted(ks))
    validation = leave_last_out(frame, min_baskets, skip=1, min_count=min_count)
    test = leave_last_out(frame, min_baskets, skip=0, min_count=min_count)
    rows = []
    for i, name in enumerate(models):
        if progress is not None:
            progress(name, i, len(models))
        started = time.perf_counter()
        torch.manual_seed(seed)
        params, validation_metrics = tune(name, validation, ks, seed)
        build, _ = candidates(name, seed)
        model = build(params).fit(test.history)
        metrics = score_split(model, test, ks)
        rows.append(
            {
                "model": name,
                **metrics,
                "validation": validation_metrics[selection_metric(name, ks)],
                "params": json.dumps(params, sort_keys=True),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs.update(
        {
            "shoppers": int(test.history.n_users),
            "evaluated_shoppers": int(len(test.users)),
            "products": int(test.history.vocabulary.n_products),
            "history_baskets": int(test.history.n_baskets),
            "min_baskets": min_baskets,
            "ks": list(ks),
        }
    )
    return table


def fit_served_model(frame, model_name=SERVED_MODEL, seed=0, min_baskets=3, min_count=1):
    """(fitted model, sequences of every shopper): params chosen on each shopper's last basket, then
    refitted on all baskets, as the store serves it."""
    validation = leave_last_out(frame, min_baskets=max(min_baskets - 1, 2), skip=0, min_count=min_count)
    params, _ = tune(model_name, validation, seed=seed)
    sequences = build_sequences(frame, min_count=min_count)
    build, _ = candidates(model_name, seed)
    return build(params).fit(sequences), sequences


def predictions(frame, model_name=SERVED_MODEL, n=20, seed=0, min_baskets=3, min_count=1):
    """{user_id: [product ids, best first]}: each shopper's predicted next basket."""
    model, sequences = fit_served_model(frame, model_name, seed, min_baskets, min_count)
    best = recommend(model, sequences, n=n)
    vocabulary = sequences.vocabulary
    return {user: vocabulary.decode(row) for user, row in zip(sequences.user_ids.tolist(), best)}


def roc_auc(labels, scores):
    """Area under the ROC curve: the chance a random positive outscores a random negative (ties 1/2)."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both positive and negative labels")
    ranks = pd.Series(np.asarray(scores, dtype=float)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def evaluate_propensity(frame, horizon_days=7, seed=0, test_share=0.25, model_config=None, train_config=None, rivals=None):
    """Test AUC of purchase propensity ("orders within horizon_days") on held-out shoppers.

    Features are taken `horizon_days` before the last order in the data and labels from the days
    after; a random `test_share` of shoppers is held out. Also reports two one-feature heuristics:
    recency (fewer days since the last order: likelier) and overdue (days since the last order over
    the shopper's mean days between orders: likelier when higher), and the share of buyers.
    `rivals` ({name: fitted PurchasePropensity}) are scored on the same held-out shoppers as
    "<name>_auc" (training judges the active version this way).
    """
    lines = prepare_frame(frame)
    features, labels = propensity_data(lines, horizon_days)
    held = np.random.default_rng(seed).random(len(features)) < test_share
    if labels[held].nunique() < 2 or labels[~held].nunique() < 2:
        raise ValueError("too few shoppers, or all alike, to evaluate purchase propensity")
    result = train_propensity(features[~held], labels[~held], model_config, train_config)
    x = torch.from_numpy(features[held].to_numpy(dtype=np.float32, copy=True))
    probability = result.model.probability(x).numpy()
    rival_aucs = {
        f"{name}_auc": roc_auc(labels[held], model.probability(x).numpy())
        for name, model in (rivals or {}).items()
        if model.config.n_features == x.shape[1]  # a model of other features cannot be judged here
    }
    return {
        **rival_aucs,
        "auc": roc_auc(labels[held], probability),
        "recency_auc": roc_auc(labels[held], -features.loc[held, "days_since_last_order"].to_numpy()),
        "overdue_auc": roc_auc(labels[held], features.loc[held, "recency_over_rhythm"].to_numpy()),
        "buyer_share": float(labels.mean()),
        "test_shoppers": int(held.sum()),
        "train_shoppers": int((~held).sum()),
        "horizon_days": horizon_days,
    }


def as_table(results, ks=None):
    """The results as fixed-width text, one row per model."""
    ks = ks or results.attrs.get("ks", [10, 20])
    columns = ["model"] + [f"{kind}@{k}" for k in ks for kind in METRICS] + ["seconds"]
    shown = results[[c for c in columns if c in results.columns]]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")


__all__ = [
    "recall_at_k",
    "ndcg_at_k",
    "repeat_explore_recall",
    "ranking_metrics",
    "top_items",
    "recommend",
    "Split",
    "leave_last_out",
    "NeuralRecommender",
    "TIFU_GRID",
    "MODEL_NAMES",
    "SERVED_MODEL",
    "candidates",
    "score_split",
    "selection_metric",
    "tune",
    "evaluate_all",
    "fit_served_model",
    "predictions",
    "roc_auc",
    "evaluate_propensity",
    "as_table",
    "METRICS",
]
