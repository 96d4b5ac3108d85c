"""Scoring shoppers with a fitted network (next-basket CNN or autoencoder): whole shoppers, a
session's cart, and the int8 copy that scores on a CPU."""
import copy
import logging
import warnings

import numpy as np
import torch
from torch import nn

from personalization.ml.batches import model_inputs
from personalization.ml.sequences import BasketSequences

logger = logging.getLogger("personalization.ml")

#: The layers as wide as the catalog, which hold nearly all of a network's weights.
CATALOG_LAYERS = {"NextBasketCNN": ("output",), "ShopperAutoencoder": ("decoder.2",)}


def cpu_scorer(model):
    """The network for scoring shoppers on a CPU: a copy whose catalog-wide layers keep their weights
    in int8 (PyTorch's dynamic quantization). Scoring one shopper reads the whole catalog's weights,
    so a quarter of the bytes makes it 5-20x faster; the scores move by about 1% of their range.
    Dynamic quantization scales its input by the whole call's range, so each shopper goes through
    those layers alone (ShopperByShopper): a shopper's scores never depend on who else is in the
    batch. The other layers are shared with `model`, not copied. `model` itself when it is not on a
    CPU, has no such layers, or the quantized engine fails."""
    names = CATALOG_LAYERS.get(type(model).__name__)
    if not names or next(model.parameters()).device.type != "cpu":
        return model
    try:
        with warnings.catch_warnings():  # PyTorch announces that this API moves to torchao
            warnings.simplefilter("ignore")
            scorer = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), set(names), dtype=torch.qint8)
    except Exception:  # an engine this build lacks
        logger.warning("Scoring with the float32 %s: dynamic quantization failed", type(model).__name__, exc_info=True)
        return model
    for name in names:
        parent, _, child = name.rpartition(".")
        holder = scorer.get_submodule(parent) if parent else scorer
        setattr(holder, child, ShopperByShopper(getattr(holder, child)))
    for name, child in model.named_children():
        if not any(layer == name or layer.startswith(name + ".") for layer in names):
            setattr(scorer, name, child)
    return scorer.eval()


class ShopperByShopper(nn.Module):
    """Runs `layer` on each shopper's rows (the first dimension) apart, so that what it computes for
    one shopper is the same in any batch."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        if x.dim() < 2 or len(x) == 1:
            return self.layer(x)
        return torch.cat([self.layer(row) for row in x.split(1)])


@torch.no_grad()
def score_shoppers(model, sequences, users=None, batch_size=512):
    """Scores (len(users) x n_items) for each shopper's next basket, from all their baskets."""
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    config = model.config
    out = []
    for start in range(0, len(users), batch_size):
        x = model_inputs(
            sequences,
            users[start : start + batch_size],
            window=config.window,
            max_basket_size=config.max_basket_size,
            decay=config.decay,
            features=getattr(config, "reads_repeat_features", True),
        )
        scores, _ = model(x.to(device))
        out.append(scores.cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, config.n_items)


def score_session(model, items, previous_baskets=()):
    """Scores (n_items,) for completing a cart: `items` (the cart and viewed products, as item
    indices) is the latest step, after the shopper's `previous_baskets` (none for an anonymous one)."""
    baskets = [list(b) for b in previous_baskets] + [list(items)]
    vocabulary = _IndexOnlyVocabulary(model.config.n_items)
    return score_shoppers(model, BasketSequences.from_baskets([baskets], vocabulary))[0]


class _IndexOnlyVocabulary:
    """Stands in for a Vocabulary where only its size matters (scoring from item indices)."""

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size
