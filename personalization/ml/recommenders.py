"""Every next-basket model under one fit/score interface, and the candidate settings tuning tries.

The baselines (personalization.ml.baselines) fit and score as they are; the networks are wrapped
so that fitting trains them (early stopping, or a fixed number of epochs for a refit).
"""
from dataclasses import replace

import torch

from personalization.ml.baselines import CoOccurrence, PersonalFrequency, Popularity, TifuKnn
from personalization.ml.scoring import score_shoppers
from personalization.ml.train import AUTOENCODER_TRAINING, NEXT_BASKET_TRAINING, train_autoencoder, train_next_basket


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

    @torch.no_grad()
    def score(self, sequences, users=None):
        return score_shoppers(self.result.model, sequences, users)

    def params(self):
        return {"epochs": self.result.best_epoch}


#: Candidate settings of TIFU-KNN; tune searches them coordinate by coordinate, in this key order.
TIFU_GRID = [
    {"alpha": a, "neighbours": k, "across_decay": rg, "within_decay": rb, "group_size": m}
    for m in (3, 7)
    for rb in (0.9, 1.0)
    for rg in (0.6, 0.8, 1.0)
    for k in (50, 300)
    for a in (0.5, 0.7, 0.9)
]
#: Networks: trained once per evaluation, on the test history, their epochs chosen by early stopping on
#: that history's own last baskets (the validation split's targets) within their training's time budget;
#: no candidate grid, no refit.
TRAINED_ONCE = ("next_basket_cnn", "autoencoder")
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


__all__ = ["NeuralRecommender", "TIFU_GRID", "TRAINED_ONCE", "MODEL_NAMES", "SERVED_MODEL", "candidates"]
