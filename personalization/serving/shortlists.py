"""Shortlists: a placement's candidates for one shopper and ask, before the shop's rules.

A shortlist is kept in the shopper's slot for the ask (personalization.state) with a check of what
it was computed for: the shopper's version token (renewed by each of their new views, cart changes
and purchases), the placement as saved, the limit and the loaded model versions. So a new event or
a newly activated model is seen at once. `precompute` fills the slots of many signed-in shoppers
ahead of their visit. An `ask` is a ranking.Ask (product_id, cart_product_ids, limit; None: the default).
"""
import logging
from dataclasses import dataclass

from personalization import registry, state
from personalization.cache import cache
from personalization.capture import privacy
from personalization.models import Placement
from personalization.serving import candidates as sources
from personalization.serving import shoppers

logger = logging.getLogger("personalization.ranking")

Strategy = Placement.Strategy

CACHE_SECONDS = 10 * 60
#: How long precomputed shortlists are kept: until the shopper's next event or a new model makes
#: them stale anyway (what they were computed for is checked), or a day (as long as a version token lives).
PRECOMPUTED_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class Shortlist:
    """What is cached per shopper and placement: candidates before the rules, and what the rules need."""

    candidates: list
    cart: tuple = ()  # product ids in the cart


def chain(placement):
    """The strategies tried in turn: the placement's, its fallback, popular."""
    return list(dict.fromkeys([placement.strategy, placement.fallback_strategy or Strategy.POPULAR, Strategy.POPULAR]))


def models(strategies):
    """The model kinds the strategies read, sorted (their versions are part of what is cached)."""
    return sorted({kind for strategy in strategies for kind in sources.MODELS[strategy]})


#: Every model a strategy reads (what is read with a placement before it is known).
ALL_MODELS = models(sources.MODELS)


def pool_size(placement, limit):
    """Candidates kept per placement: room for the rules to reject some (more with category filters)."""
    size = 4 * limit + 20
    return size * 5 if placement.included_categories else size


def slot_of(slug, shopper, ask):
    """The state.slot_key of the placement `slug`'s shortlist for `shopper` and `ask`."""
    return state.slot_key(slug, shopper, ask.limit, ask.product_id, ask.cart_product_ids)


def shortlist(placement, shopper, ask, shopper_state=None):
    """The Shortlist of `placement` for `shopper` and `ask`: from its slot when it was computed for
    what serves now, else computed and stored there.

    The shopper's opt-out and version token, the active model versions and the slot are read in one
    cache round trip (`shopper_state`: already read, with the placement), and the model versions
    stay pinned while the shortlist is built."""
    strategies = chain(placement)
    kinds = models(strategies)
    limit = ask.limit or placement.limit
    if shopper_state is None:
        shopper_state = state.read(shopper, models=kinds, slot=slot_of(placement.slug, shopper, ask))
    with registry.pinned({**shopper_state.models, **placement.model_versions}):
        check = None
        if shopper and shopper_state.version is not None and shopper_state.opted_out is not True:
            # Computed under the shopper's current token, so while they had not opted out: opting
            # out renews the token (privacy.opt_out_recorded). Served without asking again.
            check = _check(placement, kinds, shopper_state.version, limit)
            cached = _valid(shopper_state.slot, check)
            if cached is not None:
                return cached
        if shopper_state.is_opted_out():
            # Nothing personal; and what was cached before they opted out must not come back if they opt in.
            state.renew_versions([(shopper.user_id, shopper.session_key)])
            nobody = state.ShopperState(state.NOBODY, slot_key=slot_of(placement.slug, state.NOBODY, ask))
            return _computed(placement, strategies, kinds, nobody, ask, limit)
        return _computed(placement, strategies, kinds, shopper_state, ask, limit, check)


def _computed(placement, strategies, kinds, shopper_state, ask, limit, check=None):
    """The shortlist from its slot, else computed and stored there. `check`: what the caller already
    checked the slot against (nothing valid was there), for the same version token."""
    shopper, slot = shopper_state.shopper, shopper_state.slot_key
    version, new_version = shopper_state.version_token()
    looked_up = check is not None
    check = check if looked_up else _check(placement, kinds, version, limit)
    if not (new_version or looked_up):  # nothing is cached under a token made just now
        cached = _valid(cache.get(slot), check)
        if cached is not None:
            return cached
    history, history_key = shoppers.history_of(shopper, version=version, new_version=new_version, write=False)
    cart = history.cart if ask.cart_product_ids is None else ask.cart_product_ids
    found = _shortlist_of(placement, strategies, sources.Context(history, ask.product_id, cart, pool_size(placement, limit)))
    if history_key is not None and shoppers.CACHE_SECONDS == CACHE_SECONDS:  # the history just read too, at once
        cache.set_many({slot: (check, found), history_key: history}, CACHE_SECONDS)
    else:
        if history_key is not None:
            cache.set(history_key, history, shoppers.CACHE_SECONDS)
        cache.set(slot, (check, found), CACHE_SECONDS)
    return found


def _check(placement, kinds, version, limit):
    """What a shortlist in a slot must have been computed for to be served: the shopper's version
    token, the placement as saved, the limit and the loaded model versions."""
    stamp = placement.updated_at.timestamp() if placement.updated_at else 0
    parts = [placement.pk or placement.slug, stamp, placement.strategy, placement.fallback_strategy, limit, version or ""]
    return state.digest(parts + [sources.model_token(kind) for kind in kinds])


def _valid(entry, check):
    """The shortlist of a slot's (check, shortlist) entry when it was computed for `check`, else None."""
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == check:
        return entry[1]
    return None


def _shortlist_of(placement, strategies, context, ready=None):
    return Shortlist(
        candidates=_from_chain(placement, strategies, context, ready),
        cart=context.cart,
    )


def _from_chain(placement, strategies, context, ready=None):
    """The candidates of the chain's strategies in turn until the pool is full. `ready`: the first
    strategy's candidates, already generated with other shoppers'."""
    bought = set() if placement.shows_repeats else set(context.history.bought)
    found, seen = [], bought | {context.product_id}
    for strategy in strategies:
        try:
            generated = ready if ready is not None and strategy == strategies[0] else sources.generate(strategy, context)
        except sources.ModelUnavailable as reason:
            logger.info("Placement %r: %s; falling back", placement.slug, reason)
            continue
        except Exception:
            logger.exception("Strategy %s of placement %r failed; falling back", strategy, placement.slug)
            continue
        for candidate in generated:
            if candidate.product_id not in seen:
                seen.add(candidate.product_id)
                found.append(candidate)
        if len(found) >= context.pool:
            break
    return found


def precompute(placement, user_ids):
    """Computes and caches the shortlists of `placement` (its default limit, no page product, the
    recorded cart) for the signed-in shoppers `user_ids`, as their first request would: their
    histories in one query, the first strategy's model run once per batch of shoppers, one cache
    write. Shoppers who opted out are left out. Returns how many shortlists were cached."""
    if not placement.active:
        return 0
    strategies = chain(placement)
    kinds = models(strategies)
    opted_out = privacy.opted_out_users(user_ids)
    owners = [state.Shopper(user_id=user_id) for user_id in user_ids if str(user_id) not in opted_out]
    if not owners:
        return 0
    limit = placement.limit
    with registry.pinned(registry.active_ids(kinds)):
        versions = state.version_tokens(owners)
        histories = shoppers.read_histories([owner.user_id for owner in owners])
        contexts = [
            sources.Context(history=history, product_id=None, cart=history.cart, pool=pool_size(placement, limit))
            for history in histories
        ]
        try:
            first = sources.generate_many(strategies[0], contexts)
        except sources.ModelUnavailable as reason:  # each shopper goes on down the chain, as a request would
            logger.info("Placement %r: %s; falling back", placement.slug, reason)
            first = [[]] * len(contexts)
        except Exception:
            logger.exception("Strategy %s of placement %r failed; falling back", strategies[0], placement.slug)
            first = [[]] * len(contexts)
        entries = {
            state.slot_key(placement.slug, owner, None, None, None): (
                _check(placement, kinds, version, limit),
                _shortlist_of(placement, strategies, context, ready),
            )
            for owner, version, context, ready in zip(owners, versions, contexts, first)
        }
    cache.set_many(entries, PRECOMPUTED_SECONDS)
    return len(entries)
