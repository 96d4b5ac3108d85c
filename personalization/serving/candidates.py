"""Candidate products of each placement strategy, best first, each with the reason it is there.

The learned strategies score with the ACTIVE model version (`registry.load_active`), whichever
algorithm it runs: the next-basket CNN (one forward pass), TIFU-KNN (the shopper's own decayed
frequencies and their nearest neighbours among the shoppers it was fitted on) or personal
frequency; then a torch top-k over the catalog, so the work grows with the shopper's history and
the placement's size, never with a loop over the catalog. Anonymous and new shoppers are scored
from their current visit. Explanations and similar products read the item space (`scoring.item_space`):
learned item vectors (the CNN's, or the autoencoder's when the next-basket version has none) and
co-purchase relations (ml.related): an explanation names a product of the shopper's that is related
to the pick (co-purchase lift above 1 or the same category), no product for more than half a row;
similar products are first of the page product's category. The shop's rules (stock, prices,
categories, the cart) are applied afterwards, in `ranking`, on live data.
"""
import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from personalization.ml import related as relations
from personalization.ml.sequences import SPECIAL_ITEMS
from personalization.models import ModelKind, Placement
from personalization.serving import event_stats
from personalization.serving import explanations as why
from personalization.serving.scoring import (
    ModelUnavailable,
    encode,
    encoded_baskets,
    item_space,
    model_token,  # noqa: F401 (ranking names the versions it serves by it)
    require,
    score_baskets,
    served,
)
from personalization.serving.shoppers import ShopperHistory

Strategy = Placement.Strategy

#: The model versions each strategy reads (their ids are part of every cache key). The next-basket
#: strategies read the autoencoder too: its item vectors explain what a baseline recommends.
MODELS = {
    Strategy.FOR_YOU: (ModelKind.AUTOENCODER,),
    Strategy.NEXT_BASKET: (ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER),
    Strategy.BUY_AGAIN: (ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER),
    Strategy.CART_COMPLETION: (ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER),
    Strategy.SIMILAR: (ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER),
    Strategy.BOUGHT_TOGETHER: (),
    Strategy.TRENDING: (),
    Strategy.POPULAR: (),
}
#: Shoppers scored in one forward pass when precomputing (a batch's scores: SCORE_BATCH x products floats).
SCORE_BATCH = 256
# Scores at or below this are the models' masked entries (padding, unknown, excluded items).
_MASKED = -1e8


@dataclass(frozen=True)
class Candidate:
    product_id: str
    score: float
    reason: str  # an explanations code
    strategy: str
    anchor: str = ""  # the product the explanation names
    count: int = 0  # how many of the shopper's orders held it (repeat reasons)


@dataclass(frozen=True)
class Context:
    history: ShopperHistory
    product_id: str | None  # the page's product
    cart: tuple  # product ids in the cart
    pool: int  # how many candidates to return


def generate(strategy, context):
    """Candidates of `strategy`; [] when it has nothing to start from; ModelUnavailable without its model."""
    if not MODELS[strategy]:
        return STRATEGIES[strategy](context)
    with _one_thread():
        return STRATEGIES[strategy](context)


def generate_many(strategy, contexts):
    """[generate(strategy, context) for each context], with one forward pass per batch of shoppers
    for the strategies that score shoppers from their orders (precomputing; torch's threads all used)."""
    if strategy in BATCHED:
        return BATCHED[strategy](contexts)
    return [generate(strategy, context) for context in contexts]


@contextlib.contextmanager
def _one_thread():
    """Scores one shopper on one thread: for a single row, torch's thread pool costs more than it
    gives, and on a busy host its threads wait on each other (milliseconds become hundreds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# Learned strategies -------------------------------------------------------------------------


def for_you(context):
    return for_you_many([context])[0]


def for_you_many(contexts):
    """for_you of many shoppers with one forward pass per batch (what precompute uses)."""
    checkpoint = require(ModelKind.AUTOENCODER)

    def steps(context):
        session = _session_items(context)
        return [b for b in (encode(checkpoint, basket) for basket in context.history.baskets + (session,)) if len(b)]

    def top(context, baskets, scores):
        items, values = _top(scores, context.pool, exclude=np.concatenate(baskets))
        return _explained(checkpoint, items, values, Strategy.FOR_YOU, context)

    return _scored(checkpoint, contexts, steps, top)


def next_basket(context):
    return next_basket_many([context])[0]


def next_basket_many(contexts):
    checkpoint = require(ModelKind.NEXT_BASKET)

    def steps(context):
        baskets = encoded_baskets(checkpoint, context.history)
        if not baskets:
            session = encode(checkpoint, _session_items(context))
            baskets = [session] if len(session) else []
        return baskets

    def top(context, baskets, scores):
        items, values = _top(scores, context.pool)
        return _explained(checkpoint, items, values, Strategy.NEXT_BASKET, context)

    return _scored(checkpoint, contexts, steps, top)


def buy_again(context):
    return buy_again_many([context])[0]


def buy_again_many(contexts):
    if not any(context.history.baskets for context in contexts):
        return [[] for _ in contexts]
    checkpoint = require(ModelKind.NEXT_BASKET)

    def steps(context):
        if not len(encode(checkpoint, list(context.history.bought))):
            return []
        return encoded_baskets(checkpoint, context.history)

    def top(context, baskets, scores):
        bought = torch.from_numpy(encode(checkpoint, list(context.history.bought)))
        only_bought = torch.full_like(scores, -torch.inf)
        only_bought[bought] = scores[bought]
        items, values = _top(only_bought, context.pool)
        return _explained(checkpoint, items, values, Strategy.BUY_AGAIN, context)

    return _scored(checkpoint, contexts, steps, top)


def _scored(checkpoint, contexts, steps, top):
    """[candidates per context]: `steps(context)` gives the shopper's encoded baskets (none: no
    candidates), the model scores every shopper with baskets in batches of SCORE_BATCH, and
    `top(context, baskets, scores)` turns one row of scores into candidates."""
    baskets = [steps(context) for context in contexts]
    found = [[] for _ in contexts]
    scored = [n for n, shopper_baskets in enumerate(baskets) if shopper_baskets]
    for start in range(0, len(scored), SCORE_BATCH):
        part = scored[start : start + SCORE_BATCH]
        for n, scores in zip(part, score_baskets(checkpoint, [baskets[n] for n in part])):
            found[n] = top(contexts[n], baskets[n], scores)
    return found


def cart_completion(context):
    """What the shopper will add next: the cart and recent views as the latest step after their orders."""
    checkpoint = require(ModelKind.NEXT_BASKET)
    session = encode(checkpoint, _session_items(context))
    baskets = encoded_baskets(checkpoint, context.history) + ([session] if len(session) else [])
    if not baskets:
        return []
    scores = score_baskets(checkpoint, [baskets])[0]
    items, values = _top(scores, context.pool, exclude=encode(checkpoint, context.cart))
    return _explained(checkpoint, items, values, Strategy.CART_COMPLETION, context, cart_first=True)


def similar(context):
    """Products like the page's product (or the cart's products): same category first, then by
    learned item vectors and co-purchase lift (ml.related.similar_scores)."""
    space = item_space(served(ModelKind.NEXT_BASKET))
    if space is None:
        raise ModelUnavailable("similar products need a trained next-basket or autoencoder version")
    return similar_in(space, _anchors(context), context.pool)


def similar_in(space, product_ids, pool, **weights):
    """Candidates like any of `product_ids` in an ItemSpace (`weights`: similar_scores' options;
    a space without relations ranks by its vectors alone: the method before relations)."""
    anchors = encode(space, product_ids)
    if not len(anchors):
        return []
    best, which = relations.similar_scores(anchors, space.vectors, space.related, **weights)
    items, values = _top(best, pool, exclude=anchors)
    product_ids = space.vocabulary.decode(items)
    anchor_ids = space.vocabulary.decode(anchors[which[torch.from_numpy(items)].numpy()]) if len(items) else []
    return [
        Candidate(product_id, float(value), why.SIMILAR, Strategy.SIMILAR, anchor=anchor)
        for product_id, value, anchor in zip(product_ids, values, anchor_ids)
    ]


# Strategies from the store's events ---------------------------------------------------------------


def bought_together(context):
    anchors = _anchors(context)
    reason = why.BOUGHT_TOGETHER if context.product_id else why.WITH_CART
    scores, strongest = {}, {}  # product -> summed strength; product -> (anchor, strength) of its strongest anchor
    for anchor in anchors:
        for product_id, strength in event_stats.bought_with(anchor):
            if product_id in anchors:
                continue
            scores[product_id] = scores.get(product_id, 0.0) + strength
            if strength > strongest.get(product_id, ("", 0.0))[1]:
                strongest[product_id] = (anchor, strength)
    best = sorted(scores, key=lambda p: (-scores[p], p))[: context.pool]
    return [Candidate(p, scores[p], reason, Strategy.BOUGHT_TOGETHER, anchor=strongest[p][0]) for p in best]


def trending(context):
    return [Candidate(p, float(score), why.TRENDING, Strategy.TRENDING) for p, score in event_stats.trending()[: context.pool]]


def popular(context):
    return [Candidate(p, float(n), why.POPULAR, Strategy.POPULAR) for p, n in event_stats.popular()[: context.pool]]


STRATEGIES = {
    Strategy.FOR_YOU: for_you,
    Strategy.NEXT_BASKET: next_basket,
    Strategy.BUY_AGAIN: buy_again,
    Strategy.CART_COMPLETION: cart_completion,
    Strategy.BOUGHT_TOGETHER: bought_together,
    Strategy.SIMILAR: similar,
    Strategy.TRENDING: trending,
    Strategy.POPULAR: popular,
}

BATCHED = {
    Strategy.FOR_YOU: for_you_many,
    Strategy.NEXT_BASKET: next_basket_many,
    Strategy.BUY_AGAIN: buy_again_many,
}


# Helpers ---------------------------------------------------------------------------------------


def _session_items(context):
    """The current visit: the cart, then recent views."""
    return tuple(context.cart) + tuple(p for p in context.history.viewed if p not in context.cart)


def _anchors(context):
    """What anchored strategies start from: the page's product, else the latest products in the cart."""
    return [str(context.product_id)] if context.product_id else list(context.cart)[-5:]


def _top(scores, k, exclude=None):
    """(item indices, scores) of the k best scored items, leaving out masked and `exclude` items."""
    scores = scores.clone()
    scores[: len(SPECIAL_ITEMS)] = -torch.inf
    if exclude is not None and len(exclude):
        scores[torch.from_numpy(np.asarray(exclude, dtype=np.int64))] = -torch.inf
    values, items = scores.topk(min(k, len(scores)))
    keep = values > _MASKED
    return items[keep].numpy(), values[keep].tolist()


def _explained(checkpoint, items, values, strategy, context, cart_first=False, space=None, max_share=relations.MAX_ANCHOR_SHARE):
    """Candidates with reasons: a repeat or a recent view says so; any other product is explained by
    a product of the shopper's (bought often, in the cart, or viewed) related to it, no product for
    more than `max_share` of a row; "picked for you" when none is. `space`: the ItemSpace (default:
    the checkpoint's, scoring.item_space)."""
    history = context.history
    product_ids = checkpoint.vocabulary.decode(items)
    viewed = set(history.viewed)
    needs = [not history.bought.get(product_id, 0) and product_id not in viewed for product_id in product_ids]
    groups = [(why.BECAUSE_BOUGHT, history.favourites()), (why.WITH_CART, list(context.cart)), (why.BECAUSE_VIEWED, list(history.viewed))]
    if cart_first:
        groups.insert(0, groups.pop(1))
    space = item_space(checkpoint) if space is None else space
    anchors = _anchors_in(space, product_ids, groups, needs, max_share)
    out = []
    for product_id, value, (reason, anchor) in zip(product_ids, values, anchors):
        count = history.bought.get(product_id, 0)
        if count:
            out.append(Candidate(product_id, value, why.REPEAT, strategy, count=count))
        elif product_id in viewed:
            out.append(Candidate(product_id, value, why.VIEWED, strategy))
        elif anchor:
            code = why.BECAUSE_OFTEN_BOUGHT if reason == why.BECAUSE_BOUGHT and history.bought.get(anchor, 0) > 1 else reason
            out.append(Candidate(product_id, value, code, strategy, anchor=anchor))
        else:
            out.append(Candidate(product_id, value, why.FOR_YOU, strategy))
    return out


def _anchors_in(space, product_ids, groups, needs, max_share):
    """[(reason, anchor product id)] per product, ("", "") where none: ml.related.choose_anchors
    over the groups' products the space knows (`needs`: False for products explained otherwise)."""
    if space is None or not product_ids:
        return [("", "")] * len(product_ids)
    items = space.vocabulary.encode(list(product_ids))
    needs = np.asarray(needs, dtype=bool) & (items >= len(SPECIAL_ITEMS))
    known = [encode(space, ids) for _, ids in groups]
    chosen = relations.choose_anchors(items, known, space.vectors, space.related, needs=needs, max_share=max_share)
    return [(groups[group][0], space.vocabulary.items[anchor]) if group >= 0 else ("", "") for group, anchor in chosen]
