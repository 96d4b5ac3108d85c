"""The active models as serving reads them: loaded through the registry, scoring shoppers with
whichever algorithm a version runs, and the item vectors and co-purchase relations that explain
and relate products.

A next-basket version runs the CNN, TIFU-KNN or personal frequency (whichever won its training
run); each scores shoppers given as lists of encoded baskets. What is derived from a loaded version
(an int8 copy of a network, its unit item vectors) is made once per version and process.
"""
import logging
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from personalization import registry
from personalization.ml.autoencoder import ShopperAutoencoder
from personalization.ml.baselines import PersonalFrequency, TifuKnn
from personalization.ml.next_basket import NextBasketCNN
from personalization.ml.related import Related
from personalization.ml.scoring import cpu_scorer, score_shoppers
from personalization.ml.sequences import SPECIAL_ITEMS, BasketSequences
from personalization.models import ModelKind
from personalization.serving import event_stats

logger = logging.getLogger("personalization.scoring")

#: What can serve each kind that scores shoppers.
SERVABLE = {
    ModelKind.NEXT_BASKET: (NextBasketCNN, TifuKnn, PersonalFrequency),
    ModelKind.AUTOENCODER: (ShopperAutoencoder,),
}


class ModelUnavailable(Exception):
    """No version of the model a strategy needs can be loaded (not trained yet, or every artifact is broken)."""


def served(kind):
    """The loaded Checkpoint of the active version of `kind`, or None."""
    return registry.load_active(kind)


def model_token(kind):
    """Names the loaded version of `kind` (its checkpoint's creation time), '-' when none serves."""
    checkpoint = served(kind)
    return getattr(checkpoint, "created_at", None) or ("-" if checkpoint is None else str(id(checkpoint)))


def require(kind):
    """The loaded active version of `kind`, which must score shoppers in a vocabulary."""
    checkpoint = served(kind)
    if checkpoint is None:
        raise ModelUnavailable(f"no {kind} model version can be loaded")
    if not isinstance(checkpoint.model, SERVABLE[kind]) or checkpoint.vocabulary is None:
        raise ModelUnavailable(f"the active {kind} version holds a {checkpoint.kind}, which cannot serve it")
    return checkpoint


def encode(model, product_ids):
    """Item indices of the products a model (a checkpoint, an ItemSpace) knows, in order."""
    if not product_ids:
        return np.zeros(0, dtype=np.int64)
    items = model.vocabulary.encode(list(product_ids))
    return items[items >= len(SPECIAL_ITEMS)]


def encoded_baskets(checkpoint, history):
    """A ShopperHistory's baskets as item indices, leaving out those with no product the model knows."""
    return [b for b in (encode(checkpoint, basket) for basket in history.baskets) if len(b)]


def score_baskets(checkpoint, baskets):
    """Scores (len(baskets) x the vocabulary) of shoppers given as lists of encoded baskets, oldest
    first, by the checkpoint's model, whichever algorithm it runs. The shoppers are new to the model:
    TIFU-KNN looks for their neighbours among every shopper it was fitted on."""
    sequences = BasketSequences.from_baskets(baskets, checkpoint.vocabulary, user_ids=[""] * len(baskets))
    model = scorer(checkpoint)
    if isinstance(model, torch.nn.Module):
        return score_shoppers(model, sequences)
    return model.score(sequences)


_derived = {}  # (what, checkpoint kind) -> [(checkpoint, what was made from it)], per process


def _per_version(what, checkpoint, make):
    """make(checkpoint), made once per loaded version, for as many versions of a kind as the
    registry keeps loaded (the active one and an experiment arm's)."""
    kept = _derived.setdefault((what, checkpoint.kind), [])
    for loaded, made in kept:
        if loaded is checkpoint:
            return made
    made = make(checkpoint)
    kept[:] = [*kept, (checkpoint, made)][-registry.LOADED_PER_KIND :]
    return made


def scorer(checkpoint):
    """What scores shoppers with a loaded checkpoint: a fitted baseline itself; for a network on a
    CPU, a copy with its catalog-wide layers in int8 (ml.scoring.cpu_scorer: the same top products
    for 99.5% and more of shoppers, several times faster); made once per loaded version."""
    if not isinstance(checkpoint.model, torch.nn.Module):
        return checkpoint.model
    return _per_version("scorer", checkpoint, lambda loaded: cpu_scorer(loaded.model))


class ItemSpace(NamedTuple):
    vocabulary: object  # ml.sequences.Vocabulary
    vectors: torch.Tensor | None  # (len(vocabulary), d) unit vectors; None: a baseline's, which learns none
    related: Related  # co-purchase lift and categories of the vocabulary's items (ml.related)


def _learned_vectors(loaded):
    """Unit vectors of a network's items (the CNN's item embeddings, the autoencoder's output
    weights); None for a baseline, which learns none."""
    model = loaded.model
    if isinstance(model, NextBasketCNN):
        weights = model.item_embedding.weight
    elif isinstance(model, ShopperAutoencoder):
        # It scores only its products (the most bought): theirs are the rows, the others' stay 0.
        weights = torch.zeros(model.config.n_items, model.decoder[-1].weight.shape[1])
        weights[model.products.items.cpu()] = model.decoder[-1].weight.detach().float().cpu()
    else:
        return None
    return F.normalize(weights.detach().float().cpu(), dim=1)


def related_products(loaded):
    """The co-purchase relations (ml.related.Related) of a loaded version's vocabulary: stored with
    it (its checkpoint's extra["related"]), else counted from the store's purchase events; made once
    per version and process."""
    return _per_version("related", loaded, _relations_of)


def _relations_of(loaded):
    stored = (getattr(loaded, "extra", None) or {}).get("related")
    if stored is not None:
        try:
            related = Related.from_state(stored)
            if related.n_items == len(loaded.vocabulary):
                return related
            logger.warning("The related products stored with the %s version do not fit its vocabulary; counting them again", loaded.kind)
        except (KeyError, TypeError, ValueError, AttributeError):
            logger.warning("The related products stored with the %s version cannot be read; counting them again", loaded.kind, exc_info=True)
    return event_stats.copurchases(loaded.vocabulary)


def _spaces(checkpoint):
    yield checkpoint
    yield served(ModelKind.AUTOENCODER)  # only asked for when the checkpoint has no vectors


def item_space(checkpoint):
    """The items that explain `checkpoint`'s recommendations and find similar products: learned
    vectors (its own, or the active autoencoder's when it has none, a baseline, or is None) with
    their vocabulary's co-purchase relations; a baseline's vocabulary with relations alone when no
    version has vectors; None without any version."""
    for loaded in _spaces(checkpoint):
        vectors = None if loaded is None or loaded.vocabulary is None else _per_version("vectors", loaded, _learned_vectors)
        if vectors is not None:
            return ItemSpace(loaded.vocabulary, vectors, related_products(loaded))
    if checkpoint is not None and checkpoint.vocabulary is not None:
        return ItemSpace(checkpoint.vocabulary, None, related_products(checkpoint))
    return None
