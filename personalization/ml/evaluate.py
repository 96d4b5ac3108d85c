"""Leave-last-basket-out evaluation of every next-basket model, on the same split.

Shoppers with at least `min_baskets` orders are evaluated: their last basket is the target, the
rest is history. The baselines' hyper-parameters (grids) are chosen on the second-to-last basket
(history minus the last, target the second-to-last), then each is refitted on the full history with
them and tested on the last basket. The networks are trained once, on the full history: early
stopping on each shopper's last history basket (the same second-to-last basket) picks their epochs,
within their time budget (ml.train.TrainConfig.time_budget).

Metrics, averaged over evaluated shoppers: Recall@K and NDCG@K; repeat and explore recall (Li et
al., TOIS 2023: recall over the target items the shopper bought before / never bought before,
averaged over shoppers whose target has such items); discovery recall: explore recall of the
model's best K items among those the shopper never bought (a "for you" or discovery placement).
"""
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from personalization.ml.features import history_entries
from personalization.ml.metrics import (
    METRICS,
    mean_metrics,
    ndcg_at_k,
    paired_bootstrap,
    ranking_metrics,
    recall_at_k,
    repeat_explore_recall,
    roc_auc,
    shopper_metrics,
)
from personalization.ml.orders import last_order_ranks, prepare_frame
from personalization.ml.recommenders import (
    MODEL_NAMES,
    SERVED_MODEL,
    TIFU_GRID,
    TRAINED_ONCE,
    NeuralRecommender,
    candidates,
)
from personalization.ml.sequences import SPECIAL_ITEMS, BasketSequences, build_sequences

#: What every other model is compared with, shopper by shopper (the field's strongest simple model).
REFERENCE_MODEL = "tifu_knn"
#: Metrics whose difference to the reference model gets a bootstrap interval (at each K).
COMPARED = ("recall", "ndcg")
#: Where each model's seconds go: choosing params on the validation split, the refit, the test.
PHASES = ("tuning", "refit", "testing")

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
    comes from the history alone. `frame`: order lines, or prepare_frame's result (prepared once for
    several splits).
    """
    if min_baskets < 2 + skip:
        raise ValueError(f"min_baskets must be at least {2 + skip} so that every target has a history")
    lines = frame if {"time", "spend"} <= set(frame.columns) else prepare_frame(frame)
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


# Ranking and tuning -------------------------------------------------------------------------


def rankings(score, sequences, users, n, discovery=False, chunk=256):
    """[(ranked, discovery ranked or None)] per scoring: `score(rows)` gives a list of (len(rows) x
    n_items) scores (one model, or one model under several settings); each ranking is a (len(users),
    n) array of item indices, best first; discovery ranks only products the shopper never bought.
    Shoppers are scored `chunk` at a time so memory stays at a few chunk x n_items matrices."""
    users = np.asarray(users, dtype=np.int64)
    found = None
    for start in range(0, len(users), chunk):
        rows = users[start : start + chunk]
        scores = score(rows)
        if discovery:
            where, items, _ = history_entries(sequences, rows, decay=None)
            bought = torch.zeros(len(rows), sequences.n_items, dtype=torch.bool)
            bought[torch.from_numpy(where), torch.from_numpy(items)] = True
        found = found or [([], []) for _ in scores]
        for (ranked, new), matrix in zip(found, scores):
            ranked.append(top_items(matrix, n))
            if discovery:
                new.append(top_items(matrix, n, bought))
    if found is None:
        return [(np.zeros((0, n), dtype=np.int64), np.zeros((0, n), dtype=np.int64) if discovery else None)]
    return [(np.concatenate(ranked), np.concatenate(new) if discovery else None) for ranked, new in found]


def recommend(model, sequences, users=None, n=20, exclude_bought=False, chunk=256):
    """(len(users), n) item indices, best first; with `exclude_bought`, only products each shopper
    never bought."""
    users = np.arange(sequences.n_users) if users is None else users
    ranked, new = rankings(lambda rows: [model.score(sequences, rows)], sequences, users, n, exclude_bought, chunk)[0]
    return new if exclude_bought else ranked


def split_metrics(model, split, ks=(10, 20)):
    """Each evaluated shopper's metrics of a fitted model on a split (see metrics.shopper_metrics)."""
    score = lambda rows: [model.score(split.history, rows)]  # noqa: E731
    ranked, discovery = rankings(score, split.history, split.users, max(ks), discovery=True)[0]
    return shopper_metrics(ranked, split.targets, split.bought(), ks, discovery)


def score_split(model, split, ks=(10, 20)):
    """Mean metrics of a fitted model on a split."""
    return mean_metrics(split_metrics(model, split, ks))


def selection_metric(name, ks=(10, 20)):
    """What a model's params are chosen by: NDCG at the first K; discovery recall for "for you"."""
    return f"discovery_recall@{ks[0]}" if name == "autoencoder" else f"ndcg@{ks[0]}"


def _selection_values(build, line, split, metric, bought):
    """[(selection metric, params with what a refit needs)] of each candidate in `line`. Candidates
    that differ only in a model's SCORING_PARAMS share one fit (and its score_variants)."""
    k = int(metric.rsplit("@", 1)[1])
    discovery = metric.startswith("discovery")
    groups = {}
    for i, params in enumerate(line):
        scoring = getattr(build(params), "SCORING_PARAMS", ())
        groups.setdefault(_key({n: v for n, v in params.items() if n not in scoring}), []).append(i)
    out = [None] * len(line)
    for group in groups.values():
        model = build(line[group[0]]).fit(split.history)
        if len(group) > 1:
            variants = [{name: line[i][name] for name in model.SCORING_PARAMS} for i in group]
            score = lambda rows: model.score_variants(split.history, rows, variants)  # noqa: E731
        else:
            score = lambda rows: [model.score(split.history, rows)]  # noqa: E731
        found = rankings(score, split.history, split.users, k, discovery)
        for i, (ranked, new) in zip(group, found):
            value = mean_metrics(shopper_metrics(ranked, split.targets, bought, (k,), new))[metric]
            out[i] = (value, {**line[i], **model.params(), **line[i]})
    return out


def _key(params):
    return tuple(sorted(params.items()))


def coordinate_search(grid, measure, together=()):
    """(the best candidate of `grid`, {candidate key: what `measure` gave it}) by coordinate ascent.

    `grid` holds dicts with the same keys; `measure(candidates)` gives a (value, ...) tuple for each.
    The parameters in `together` are not searched one by one: each setting of the others is measured
    with every combination of them (they share work, e.g. one fit) and counts by its best. From the
    middle value of each other parameter, every value of one is tried with the rest fixed, the best
    kept, then the next parameter (in key order), until a round changes nothing.
    """
    names = [n for n in grid[0] if n not in together]
    values = {n: list(dict.fromkeys(p[n] for p in grid)) for n in names}
    settings = list(dict.fromkeys(_key({n: p[n] for n in names}) for p in grid))
    current = _key({n: values[n][len(values[n]) // 2] for n in names})
    current = current if current in settings else settings[0]
    seen = {}

    def plane(setting):
        return [p for p in grid if _key({n: p[n] for n in names}) == setting]

    def best_of(setting):
        return max(plane(setting), key=lambda p: seen[_key(p)][0])

    moved = True
    while moved:
        moved = False
        for varied in names or [None]:
            line = [t for t in settings if all(a == b for (n, a), (_, b) in zip(t, current) if n != varied)]
            todo = [p for t in line for p in plane(t) if _key(p) not in seen]
            if todo:
                seen.update(zip(map(_key, todo), measure(todo)))
            best = max(line, key=lambda t: seen[_key(best_of(t))][0])
            if seen[_key(best_of(best))][0] > seen[_key(best_of(current))][0]:
                current, moved = best, True
    return best_of(current), seen


def tune(name, validation, ks=(10, 20), seed=0):
    """The best candidate params of a model on the validation split (see selection_metric and
    coordinate_search), with the params a refit needs (the networks' best epoch), and {selection
    metric: its value}."""
    build, grid = candidates(name, seed)
    metric = selection_metric(name, ks)
    bought = validation.bought()
    together = getattr(build(grid[0]), "SCORING_PARAMS", ())  # one fit scores all their combinations

    def measure(line):
        return _selection_values(build, line, validation, metric, bought)

    best, seen = coordinate_search(grid, measure, together)
    value, params = seen[_key(best)]
    return params, {metric: value}


def evaluate_all(
    frame, ks=(10, 20), models=MODEL_NAMES, seed=0, min_baskets=3, min_count=1, progress=None, resamples=2000
):
    """One row per model: test metrics on the last basket after choosing params on the one before.

    Columns: model, the metrics at each K, "validation" (the selection metric on the second-to-last
    basket; NaN for the networks, TRAINED_ONCE), the chosen params (JSON; a network's best epoch), seconds (split by PHASES: "tuning_seconds", ...); and, when
    REFERENCE_MODEL is among `models`, for recall and NDCG at each K the mean difference to it
    ("recall@10_vs_tifu_knn") with the 95% paired bootstrap interval over shoppers ("..._low",
    "..._high"; `resamples` resamplings).
    `progress(name, i, n)` is called before each model. The result's `attrs` hold the split's sizes.
    """
    ks = tuple(sorted(ks))
    lines = prepare_frame(frame)
    validation = leave_last_out(lines, min_baskets, skip=1, min_count=min_count)
    test = leave_last_out(lines, min_baskets, skip=0, min_count=min_count)
    rows, per_shopper = [], {}
    for i, name in enumerate(models):
        if progress is not None:
            progress(name, i, len(models))
        marks = [time.perf_counter()]
        torch.manual_seed(seed)
        build, _ = candidates(name, seed)
        if name in TRAINED_ONCE:  # early stopping inside the fit stands for the tuning
            params, validation_metrics = {}, {selection_metric(name, ks): float("nan")}
        else:
            params, validation_metrics = tune(name, validation, ks, seed)
        marks.append(time.perf_counter())
        model = build(params).fit(test.history)
        params = {**params, **model.params()}
        marks.append(time.perf_counter())
        per_shopper[name] = split_metrics(model, test, ks)
        marks.append(time.perf_counter())
        rows.append(
            {
                "model": name,
                **mean_metrics(per_shopper[name]),
                "validation": validation_metrics[selection_metric(name, ks)],
                "params": json.dumps(params, sort_keys=True),
                "seconds": round(marks[-1] - marks[0], 1),
                **{f"{phase}_seconds": round(b - a, 1) for phase, a, b in zip(PHASES, marks, marks[1:])},
            }
        )
    table = pd.DataFrame(rows)
    if REFERENCE_MODEL in per_shopper:
        reference = per_shopper[REFERENCE_MODEL]
        for column in (f"{kind}@{k}" for k in ks for kind in COMPARED):
            found = [paired_bootstrap(per_shopper[name][column], reference[column], resamples, seed) for name in models]
            name = f"{column}_vs_{REFERENCE_MODEL}"
            table[name], table[f"{name}_low"], table[f"{name}_high"] = zip(*found)
    table.attrs.update(
        {
            "shoppers": int(test.history.n_users),
            "evaluated_shoppers": int(len(test.users)),
            "products": int(test.history.vocabulary.n_products),
            "history_baskets": int(test.history.n_baskets),
            "min_baskets": min_baskets,
            "ks": list(ks),
            "reference_model": REFERENCE_MODEL,
            "bootstrap_resamples": resamples,
        }
    )
    return table


def fit_served_model(frame, model_name=SERVED_MODEL, seed=0, min_baskets=3, min_count=1):
    """(fitted model, sequences of every shopper): params chosen on each shopper's last basket, then
    refitted on all baskets, as the store serves it."""
    params = {}
    if model_name not in TRAINED_ONCE:  # a network stops early on the shoppers' last baskets itself
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


def as_table(results, ks=None):
    """The results as fixed-width text, one row per model; each difference to the reference model is
    shown as "mean [low, high]" (the 95% bootstrap interval)."""
    ks = ks or results.attrs.get("ks", [10, 20])
    columns = ["model"] + [f"{kind}@{k}" for k in ks for kind in METRICS] + ["seconds"]
    shown = results[[c for c in columns if c in results.columns]].copy()
    for column in [c for c in results.columns if c.endswith(f"_vs_{REFERENCE_MODEL}")]:
        low, high = results[f"{column}_low"], results[f"{column}_high"]
        shown[column.replace("_vs_", " vs ")] = [
            f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]" for m, lo, hi in zip(results[column], low, high)
        ]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")


__all__ = [
    "recall_at_k",
    "ndcg_at_k",
    "repeat_explore_recall",
    "ranking_metrics",
    "top_items",
    "recommend",
    "rankings",
    "split_metrics",
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
    "coordinate_search",
    "evaluate_all",
    "fit_served_model",
    "predictions",
    "roc_auc",
    "as_table",
    "METRICS",
    "REFERENCE_MODEL",
    "paired_bootstrap",
]
