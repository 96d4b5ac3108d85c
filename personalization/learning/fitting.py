"""What each model kind fits, and how it is judged, from one run's purchases prepared once.

`TrainingData(frame)` prepares the order lines, the basket sequences and the held-out split the
first time a trainer asks, and every kind of the run shares them. Production models are fitted
with `ml.train`'s functions. A next-basket run judges every algorithm that can serve the store
(the CNN, TIFU-KNN, personal frequency) on the same held-out last baskets, and the best of them is
refitted on every basket: that is the version published. The active version is re-scored on the
same baskets (`training.decide` then says whether the new version replaces it).
"""
import dataclasses
import functools
import json
import logging
import math

import numpy as np
import torch

from personalization import registry
from personalization.ml import checkpoint, evaluate, propensity_evaluation, related
from personalization.ml.autoencoder import segment_shoppers
from personalization.ml.baselines import PersonalFrequency, TifuKnn
from personalization.ml.orders import data_window, prepare_frame, to_days
from personalization.ml.scoring import score_shoppers
from personalization.ml.sequences import PAD, SPECIAL_ITEMS, UNKNOWN, Vocabulary, build_sequences, item_categories
from personalization.ml.train import (
    AUTOENCODER_TRAINING,
    NEXT_BASKET_TRAINING,
    propensity_data,
    train_autoencoder,
    train_next_basket,
    train_propensity,
)
from personalization.models import Algorithm, ModelKind

logger = logging.getLogger("personalization.training")

KS = (10, 20)
#: Shoppers with this many orders or more are judged on their last one.
MIN_BASKETS = 3
#: What can serve next-basket placements, simplest first: a tie goes to the simpler one.
NEXT_BASKET_ALGORITHMS = (Algorithm.PERSONAL_FREQUENCY, Algorithm.TIFU_KNN, Algorithm.NEXT_BASKET_CNN)
PROPENSITY_HORIZON_DAYS = 7
#: Fewer shoppers than this with baskets the active version never saw: it is judged on every shopper.
MIN_UNSEEN_SHOPPERS = 30


class NotEnoughData(ValueError):
    """The store's data cannot train or judge this model yet; the message says what is missing."""


def gate_metric(kind):
    """The held-out metric a new version of `kind` must improve to be promoted."""
    return "auc" if kind == ModelKind.PROPENSITY else evaluate.selection_metric(kind, KS)


def plain(value):
    """Numbers, lists and dicts only (numpy scalars become Python ones): what a checkpoint loaded with
    weights_only=True and a JSONField both accept."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


class TrainingData:
    """One run's purchases: the order lines as read, then prepared once, the basket sequences of
    every shopper (what served models are fitted on), the held-out split and the data window."""

    def __init__(self, frame):
        self.frame = frame

    @functools.cached_property
    def lines(self):
        if self.frame.empty:
            raise NotEnoughData("there are no purchases to learn from yet")
        try:
            return prepare_frame(self.frame)
        except ValueError as exc:
            raise NotEnoughData(str(exc)) from exc

    @functools.cached_property
    def sequences(self):
        return build_sequences(self.lines)

    @functools.cached_property
    def window(self):
        return data_window(self.lines)

    @functools.cached_property
    def split(self):
        return held_out(self.sequences)

    @functools.cached_property
    def related(self):
        """The co-purchase relations of the vocabulary's products (ml.related), kept with every
        version whose recommendations they explain, so serving never counts them itself."""
        product_ids, categories = self.lines["product_id"].astype(str), self.lines["category"].astype(str)
        codes, names = related.item_categories(product_ids, categories, self.sequences.vocabulary)
        return related.Related.from_sequences(self.sequences, codes, names).state()


def held_out(sequences, min_baskets=MIN_BASKETS):
    """The leave-last-basket-out split of `sequences` (as ml.evaluate.leave_last_out makes from order
    lines): each shopper with `min_baskets` orders or more is judged on their last basket; the history
    is every other basket, in a vocabulary of its own products (products only a held-out basket
    holds are never hits). The history keeps every shopper at the same row."""
    counts = sequences.basket_counts
    evaluated = np.flatnonzero(counts >= min_baskets)
    if not len(evaluated):
        raise NotEnoughData(f"no shopper has {min_baskets} orders or more: too little data to evaluate")
    history = sequences.prefixes(counts - (counts >= min_baskets))
    kept = np.unique(history.items)
    kept = kept[kept >= len(SPECIAL_ITEMS)]
    own = np.full(sequences.n_items, UNKNOWN, dtype=np.int64)
    own[kept] = np.arange(len(SPECIAL_ITEMS), len(SPECIAL_ITEMS) + len(kept))
    vocabulary = Vocabulary(SPECIAL_ITEMS + tuple(sequences.vocabulary.items[i] for i in kept))
    history = dataclasses.replace(history, items=own[history.items], vocabulary=vocabulary)
    rows, items = sequences.basket_lines(sequences.user_offsets[evaluated + 1] - 1)
    targets = own[items]
    unknown = np.flatnonzero(targets == UNKNOWN)
    targets[unknown] = -1 - np.arange(len(unknown))
    return evaluate.Split(history, evaluated, np.split(targets, np.cumsum(np.bincount(rows, minlength=len(evaluated)))[:-1]))


class Network:
    """A fitted network behind the baselines' `score(sequences, users)`."""

    def __init__(self, model):
        self.model = model

    def score(self, sequences, users=None):
        return score_shoppers(self.model, sequences, users)


def scorer(model):
    """What scores shoppers with `model` (a network or a fitted baseline)."""
    return Network(model) if isinstance(model, torch.nn.Module) else model


class InVocabulary:
    """A model fitted on another vocabulary, scoring shoppers in this data's vocabulary; products
    it never saw score lowest. Lets the active version be judged on new data fairly."""

    def __init__(self, model, vocabulary):
        self.scorer, self.vocabulary = scorer(model), vocabulary

    def score(self, sequences, users=None):
        to_own = self.vocabulary.encode(list(sequences.vocabulary.items))
        to_own[PAD] = PAD
        remapped = dataclasses.replace(sequences, items=to_own[sequences.items], vocabulary=self.vocabulary)
        scores = self.scorer.score(remapped, users)[:, torch.from_numpy(to_own)]
        scores[:, torch.from_numpy(to_own == UNKNOWN)] = -torch.inf
        return scores


def fit(algorithm, sequences, device="cpu", epochs=None, seed=0):
    """(fitted model, epochs a refit takes): a network stops early on its own validation pairs,
    or trains exactly `epochs` epochs (a refit); a baseline is fitted with its defaults."""
    if algorithm == Algorithm.PERSONAL_FREQUENCY:
        return PersonalFrequency().fit(sequences), None
    if algorithm == Algorithm.TIFU_KNN:
        return TifuKnn().fit(sequences), None
    trainer, defaults = {
        Algorithm.NEXT_BASKET_CNN: (train_next_basket, NEXT_BASKET_TRAINING),
        Algorithm.AUTOENCODER: (train_autoencoder, AUTOENCODER_TRAINING),
    }[algorithm]
    fixed = {"epochs": epochs, "patience": None} if epochs else {}
    result = trainer(sequences, train_config=dataclasses.replace(defaults, device=device, seed=seed, **fixed))
    return result.model, max(1, result.best_epoch)


def config_of(model):
    return dataclasses.asdict(model.config) if isinstance(model, torch.nn.Module) else plain(model.params())


@dataclasses.dataclass
class Outcome:
    """A trained version and how it did on the held-out data, next to what it was compared with."""

    artifact: bytes
    algorithm: str  # what the version runs (an Algorithm value)
    metrics: dict  # its held-out metrics
    gate_metric: str
    # The other algorithms that could serve this kind, judged on the same baskets: {algorithm: metrics}.
    rivals: dict = dataclasses.field(default_factory=dict)
    baseline: dict | None = None  # what cannot serve this kind but must be beaten (None: nothing)
    active: dict | None = None  # the active version's metrics on the same held-out data (None: no active version)
    # The candidate's metrics on the shoppers the active version was judged on, when that is a
    # subset (those whose held-out basket the active version never saw); None: the same as metrics.
    versus: dict | None = None
    config: dict = dataclasses.field(default_factory=dict)
    data_window: dict = dataclasses.field(default_factory=dict)


def unseen_by(version, data):
    """The part of `data.split` whose held-out basket came after `version`'s data window (the
    active version was refitted on everything before, so it has seen the other held-out baskets and
    would be judged too kindly on them); None when too few shoppers, or no order times, to tell."""
    end = (version.data_window or {}).get("last_order_at")
    split, sequences = data.split, data.sequences
    times = sequences.basket_times[sequences.user_offsets[split.users + 1] - 1]  # their held-out baskets
    if not end or np.isnan(times).all():
        return None
    keep = times > to_days(end)
    if keep.sum() < MIN_UNSEEN_SHOPPERS:
        return None
    return evaluate.Split(split.history, split.users[keep], [t for t, k in zip(split.targets, keep) if k])


def _judge_active(kind, data, candidate, metrics):
    """(the active version's metrics, the candidate's metrics on the same shoppers), or (None, None)."""
    version = registry.active(kind)
    if version is None:
        return None, None
    try:
        loaded = registry.load(version)
        unseen = unseen_by(version, data)
        on = data.split if unseen is None else unseen
        active = evaluate.score_split(InVocabulary(loaded.model, loaded.vocabulary), on, KS)
        versus = metrics if unseen is None else evaluate.score_split(scorer(candidate), unseen, KS)
        return {**active, "shoppers": len(on.users)}, versus
    except Exception:
        logger.exception("Cannot re-score the active %s; judging the new version without it", version)
        return None, None


def _comparable(value):
    """A metric for ordering: one no shopper could give (None, NaN) ranks last."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def train_next_basket_kind(data, device, progress=None):
    """Judges every next-basket algorithm on the held-out baskets; the best one is refitted on every
    basket and published (a tie goes to the simpler one; one whose checkpoint cannot serve gives
    way to the next best, and its better score stays in the rivals)."""
    metric = gate_metric(ModelKind.NEXT_BASKET)
    judged, fitted = {}, {}
    for algorithm in NEXT_BASKET_ALGORITHMS:
        fitted[algorithm] = fit(algorithm, data.split.history, device)
        judged[algorithm] = evaluate.score_split(scorer(fitted[algorithm][0]), data.split, KS)
        if progress:
            progress(f"{ModelKind.NEXT_BASKET}: {algorithm} held-out {metric} {judged[algorithm][metric]:.4f}")
    # sorted() keeps equals in their order: the simpler algorithm first.
    for algorithm in sorted(NEXT_BASKET_ALGORITHMS, key=lambda name: _comparable(judged[name][metric]), reverse=True):
        model, epochs = fitted[algorithm]
        final, _ = fit(algorithm, data.sequences, device, epochs=epochs)
        artifact = checkpoint.save(
            final, vocabulary=data.sequences.vocabulary, metrics=judged[algorithm], data_window=data.window,
            extra={"related": data.related},
        )  # fmt: skip
        problem = serving_problem(artifact, data.sequences)
        if problem is None:
            break
        logger.error("The %s cannot be published, the next best is: %s", algorithm, problem)
        if progress:
            progress(f"{ModelKind.NEXT_BASKET}: {algorithm} cannot serve: {problem}")
    else:
        raise RuntimeError("no next-basket algorithm gives a checkpoint that loads and scores shoppers")
    active, versus = _judge_active(ModelKind.NEXT_BASKET, data, model, judged[algorithm])
    return Outcome(
        artifact=artifact,
        algorithm=algorithm,
        metrics=judged[algorithm],
        gate_metric=metric,
        rivals={other: found for other, found in judged.items() if other != algorithm},
        active=active,
        versus=versus,
        config=config_of(final),
        data_window=data.window,
    )


def serving_problem(artifact, sequences):
    """Why the checkpoint cannot serve (it does not load, or does not score a shopper as serving
    will), or None: a version that cannot serve is never published."""
    try:
        scores = scorer(checkpoint.load(artifact).model).score(sequences, [0])
    except Exception as exc:
        return f"its checkpoint does not load and score shoppers: {exc!r}"
    if tuple(scores.shape) != (1, sequences.n_items):
        return f"its checkpoint scores {tuple(scores.shape)}, not (1, {sequences.n_items})"
    return None


def train_autoencoder_kind(data, device, progress=None):
    """The shopper autoencoder ("for you") must beat personal frequency's discoveries (the
    popular products a shopper never bought) and the active version."""
    metric = gate_metric(ModelKind.AUTOENCODER)
    model, epochs = fit(Algorithm.AUTOENCODER, data.split.history, device)
    metrics = evaluate.score_split(scorer(model), data.split, KS)
    baseline = evaluate.score_split(PersonalFrequency().fit(data.split.history), data.split, KS)
    if progress:
        progress(f"{ModelKind.AUTOENCODER}: held-out {metric} {metrics[metric]:.4f}")
    active, versus = _judge_active(ModelKind.AUTOENCODER, data, model, metrics)
    final, _ = fit(Algorithm.AUTOENCODER, data.sequences, device, epochs=epochs)
    _, segments = segment_shoppers(final, data.sequences, item_categories(data.lines, data.sequences.vocabulary))
    artifact = checkpoint.save(
        final, vocabulary=data.sequences.vocabulary, metrics=metrics, data_window=data.window,
        extra={**plain({"segments": segments}), "related": data.related},
    )
    return Outcome(
        artifact, Algorithm.AUTOENCODER, metrics, metric, baseline=baseline, active=active, versus=versus,
        config=config_of(final), data_window=data.window,
    )  # fmt: skip


def _active_propensity():
    """The active propensity model, or None (also when it cannot load)."""
    version = registry.active(ModelKind.PROPENSITY)
    if version is None:
        return None
    try:
        return registry.load(version).model
    except Exception:
        logger.exception("Cannot re-score the active %s; judging the new version against the baseline only", version)
        return None


def train_propensity_kind(data, device, progress=None):
    """Purchase propensity must beat the better of the recency and overdue heuristics, and the active
    version, on the same held-out shoppers."""
    lines, active_model = data.lines, _active_propensity()
    try:
        metrics = propensity_evaluation.evaluate_propensity(
            data.frame, horizon_days=PROPENSITY_HORIZON_DAYS, rivals={"active": active_model} if active_model else None
        )
        features, labels = propensity_data(lines, PROPENSITY_HORIZON_DAYS)
        result = train_propensity(features, labels, train_config=None)
    except ValueError as exc:
        raise NotEnoughData(str(exc)) from exc
    baseline = {"auc": max(metrics["recency_auc"], metrics["overdue_auc"])}
    active = {"auc": metrics.pop("active_auc")} if "active_auc" in metrics else None
    artifact = checkpoint.save(result.model, metrics=metrics, data_window=data.window, extra={"features": list(features.columns)})
    return Outcome(
        artifact, Algorithm.PROPENSITY, metrics, "auc", baseline=baseline, active=active,
        config=config_of(result.model), data_window=data.window,
    )  # fmt: skip


#: How each model kind is trained and judged: trainer(TrainingData, device, progress) -> Outcome.
TRAINERS = {
    ModelKind.NEXT_BASKET: train_next_basket_kind,
    ModelKind.AUTOENCODER: train_autoencoder_kind,
    ModelKind.PROPENSITY: train_propensity_kind,
}

__all__ = [
    "TrainingData",
    "NotEnoughData",
    "Outcome",
    "TRAINERS",
    "NEXT_BASKET_ALGORITHMS",
    "gate_metric",
    "held_out",
    "unseen_by",
    "fit",
    "scorer",
    "InVocabulary",
    "plain",
]
