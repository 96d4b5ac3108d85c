"""Recommendations for a placement: candidates from the models, the shop's rules, cold start, reasons.

    recs = ranking.recommend_for_slug("home-for-you", request)
    for item in recs: item.product.title, item.explanation, item.click_url

A placement's strategy is tried first, then its fallback, then popular products, until the
placement is full. Candidates are cached per shopper and placement; the cache key holds the
shopper's version token (renewed by each of their new views, cart changes and purchases, see
`personalization.state`) and the loaded model versions, so a new event or a newly activated model
is seen at once. The shop's rules run on every request against live data through the adapter, so
a product that just sold out is never shown. Nothing here raises into a page: a broken model or
a failing query is logged and popular products are served instead.
"""
import functools
import logging
from dataclasses import asdict, dataclass, field, replace

from django.urls import NoReverseMatch, reverse

from personalization import attribution, events, privacy, registry, state
from personalization.adapters import ProductInfo, get_adapter, url_context
from personalization.cache import cache
from personalization.models import EventKind, Placement
from personalization.models.placements import MAX_LIMIT
from personalization.services import candidates as sources
from personalization.services import experiments, explanations, shoppers

logger = logging.getLogger("personalization.ranking")

Strategy = Placement.Strategy

CACHE_SECONDS = 10 * 60
#: How long precomputed shortlists are kept: until the shopper's next event or a new model makes
#: them stale anyway (what they were computed for is checked), or a day (as long as a version token lives).
PRECOMPUTED_SECONDS = 24 * 60 * 60
PLACEMENT_CACHE_SECONDS = 60
#: The placement `{% cart_predictions %}` and `cart_predictions()` serve.
CART_PREDICTIONS_SLUG = "cart-completion"
_PAGE_ATTRIBUTE = "_personalization_shown"


@dataclass(frozen=True)
class Recommendation:
    product: ProductInfo  # live from the store's adapter: title, price, category, url, ...
    score: float
    reason: str  # a code of services.explanations, e.g. "because_often_bought"
    explanation: str  # the reason as a sentence in the current language
    strategy: str  # the strategy that found it (the placement's, its fallback's, or popular)
    click_url: str  # the tracked link to the product page


@dataclass
class Recommendations:
    """What one placement shows one shopper once; `recommendation_id` marks its impressions and clicks."""

    placement: Placement
    recommendation_id: str
    heading: str
    items: list = field(default_factory=list)

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)

    def __bool__(self):
        return bool(self.items)

    @property
    def product_ids(self):
        return [item.product.id for item in self.items]

    def as_dict(self):
        """Plain data (for JSON): the placement's slug, the recommendation id, the heading and the items."""
        return {
            "placement": self.placement.slug,
            "recommendation_id": self.recommendation_id,
            "heading": self.heading,
            "items": [
                {**{k: v for k, v in asdict(item).items() if k != "product"}, "product": _product_dict(item.product)}
                for item in self.items
            ],
        }


def _product_dict(product):
    data = asdict(product)
    data["price"] = None if product.price is None else str(product.price)
    return data


# Public entry points -----------------------------------------------------------------------


def recommend(
    placement, shopper, *, product_id=None, cart_product_ids=None, limit=None, exclude_product_ids=(), shopper_state=None
):
    """Recommendations of `placement` for `shopper` (an events.Shopper; empty for nobody known).

    `product_id`: the product of the page (bought together, similar; never recommended itself).
    `cart_product_ids`: what the cart holds; None reads it from the shopper's cart events.
    `limit`: at most this many items (default: the placement's). `exclude_product_ids`: products
    already shown on the page. `state`: the state.ShopperState read with the placement (recommend_slug).
    Never raises; an inactive placement gives no items.
    """
    # The shopper's arm when an experiment runs on the placement (its exposure recorded).
    placement = experiments.placement_for(
        placement, shopper, cached=shopper_state.experiment_cached() if shopper_state else None
    )
    recommendation_id = attribution.new_recommendation_id(shopper)
    requested, limit = limit, _limit(limit, placement)
    product_id = None if product_id in (None, "") else str(product_id)
    items, strategy = [], placement.strategy
    if placement.active:
        try:
            ask = _Ask(product_id, cart_product_ids, limit, requested)
            shortlist = _shortlist(placement, shopper, ask, shopper_state)
            items = _serve(placement, shortlist, product_id=product_id, exclude=exclude_product_ids, limit=limit)
        except Exception:
            logger.exception("Recommendations of placement %r failed; serving popular products", placement.slug)
            items = _popular_only(placement, product_id, cart_product_ids, exclude_product_ids, limit)
        strategy = items[0][0].strategy if items else strategy
    links = _ClickLinks(recommendation_id, placement.slug) if items else None
    return Recommendations(
        placement=placement,
        recommendation_id=recommendation_id,
        heading=explanations.heading(placement, strategy),
        items=[_item(candidate, info, anchor, links) for candidate, info, anchor in items],
    )


def recommend_slug(slug, shopper, **options):
    """recommend() of the placement `slug`, which is read from the cache in the same round trip as
    what ranking reads about the shopper. Raises Placement.DoesNotExist for an unknown slug."""
    placement, shopper_state = _placement_and_state(slug, shopper, options)
    return recommend(placement, shopper, shopper_state=shopper_state, **options)


def recommend_for_slug(slug, request, *, product_id=None, cart_product_ids=None, limit=None):
    """Recommendations of the placement `slug` for the shopper of `request`.

    Raises Placement.DoesNotExist for an unknown slug. Products already shown on this request's page
    by other placements are left out (and these are added to them). Otherwise as `recommend_slug`.
    """
    shopper = shopper_for(request)
    options = {"product_id": product_id, "cart_product_ids": cart_product_ids, "limit": limit}
    placement, shopper_state = _placement_and_state(slug, shopper, options)
    return _for_page(request, placement, shopper=shopper, shopper_state=shopper_state, **options)


def cart_predictions(shopper, cart_product_ids=None, *, limit=None, exclude_product_ids=()):
    """What `shopper` is likely to add to a cart holding `cart_product_ids` (None: their recorded cart),
    from the "cart-completion" placement (or its defaults when the shop deleted it)."""
    return recommend(
        cart_placement(), shopper, cart_product_ids=cart_product_ids, limit=limit, exclude_product_ids=exclude_product_ids
    )


def cart_predictions_for_request(request, cart_product_ids=None, *, limit=None):
    """cart_predictions() for the shopper of `request`, leaving out what the page already shows."""
    return _for_page(request, cart_placement(), cart_product_ids=cart_product_ids, limit=limit)


def shopper_for(request):
    """The events.Shopper of a request: the signed-in user, or the session (created if needed)."""
    return events.shopper_from(request)


def placement_by_slug(slug, shopper_state=None):
    """The Placement with this slug (cached briefly); raises Placement.DoesNotExist. `shopper_state`:
    a state.ShopperState read with the placement (None: read the cache here)."""
    key = Placement.cache_key(slug)
    placement = cache.get(key) if shopper_state is None else shopper_state.placement
    if placement is None:
        placement = Placement.objects.get(slug=slug)
        cache.set(key, placement, PLACEMENT_CACHE_SECONDS)
    return placement


def _placement_and_state(slug, shopper, options):
    """(the placement `slug`, what _shortlist reads from the cache for `shopper` and recommend's
    `options`), in one round trip (the state of every model a strategy may need, since the placement
    is not known yet). When the cache fails, the state is left to _shortlist, which falls back to
    popular products."""
    slot = state.slot_key(slug, shopper, options.get("limit"), options.get("product_id"), options.get("cart_product_ids"))
    try:
        shopper_state = state.read(shopper, models=_ALL_MODELS, slot=slot, placement_slug=slug)
    except Exception:
        logger.exception("Could not read the state of placement %r from the cache", slug)
        return placement_by_slug(slug), None
    return placement_by_slug(slug, shopper_state=shopper_state), shopper_state


def cart_placement():
    """The "cart-completion" placement; its defaults (unsaved) when the shop deleted it."""
    try:
        return placement_by_slug(CART_PREDICTIONS_SLUG)
    except Placement.DoesNotExist:
        return Placement(
            slug=CART_PREDICTIONS_SLUG,
            name="Cart completion",
            page=Placement.Page.CART,
            strategy=Strategy.CART_COMPLETION,
            fallback_strategy=Strategy.BOUGHT_TOGETHER,
            limit=4,
        )


def record_impressions(request_or_shopper, recommendations):
    """Records one impression per shown item, with the recommendation id, in one write. Never raises."""
    if not recommendations:
        return 0
    try:
        shopper = request_or_shopper if isinstance(request_or_shopper, events.Shopper) else shopper_for(request_or_shopper)
        return events.bulk_record(
            [
                events.NewEvent(
                    EventKind.IMPRESSION,
                    item.product.id,
                    shopper,
                    recommendation_id=recommendations.recommendation_id,
                    data={"placement": recommendations.placement.slug, "position": position},
                )
                for position, item in enumerate(recommendations, start=1)
            ]
        )
    except Exception:
        logger.exception("Could not record the impressions of %s", recommendations.recommendation_id)
        return 0


def shown_on_page(request):
    """The product ids the placements of this request's page have shown so far (a set, kept on the request)."""
    shown = getattr(request, _PAGE_ATTRIBUTE, None)
    if shown is None:
        shown = set()
        setattr(request, _PAGE_ATTRIBUTE, shown)
    return shown


def _for_page(request, placement, shopper=None, **options):
    shown = shown_on_page(request)
    shopper = shopper if shopper is not None else shopper_for(request)
    found = recommend(placement, shopper, exclude_product_ids=frozenset(shown), **options)
    shown.update(found.product_ids)
    return found


# Candidates, cached per shopper and placement ---------------------------------------------------


@dataclass(frozen=True)
class Shortlist:
    """What is cached per shopper and placement: candidates before the rules, and what the rules need."""

    candidates: list
    cart: tuple = ()  # product ids in the cart
    favourites: tuple = ()  # (product id, orders) the shopper buys most, for explanations


def _chain(placement):
    """The strategies tried in turn: the placement's, its fallback, popular."""
    return list(dict.fromkeys([placement.strategy, placement.fallback_strategy or Strategy.POPULAR, Strategy.POPULAR]))


def _models(strategies):
    """The model kinds the strategies read, sorted (their versions are part of what is cached)."""
    return sorted({kind for strategy in strategies for kind in sources.MODELS[strategy]})


def _limit(limit, placement):
    """The number of items to show: `limit` when it is a whole number from 1 to MAX_LIMIT, else the placement's."""
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        return placement.limit
    return max(1, min(limit, MAX_LIMIT))


def _pool_size(placement, limit):
    """Candidates kept per placement: room for the rules to reject some (more with category filters)."""
    size = 4 * limit + 20
    return size * 5 if placement.included_categories else size


@dataclass(frozen=True)
class _Ask:
    """What a shortlist is for, besides the placement and the shopper."""

    product_id: str | None
    cart_product_ids: object  # None: the cart recorded for the shopper
    limit: int
    requested: object  # the limit as the caller asked for it (None: the placement's)


def _shortlist(placement, shopper, ask, shopper_state=None):
    """The Shortlist, cached in a slot per shopper, placement and ask, and valid while the shopper's
    version token, the placement and the loaded model versions are the ones it was computed for.

    The placement (recommend_slug), the shopper's opt-out and version token, the active model
    versions and the slot are read in one cache round trip (`shopper_state`: already read), and the
    model versions stay pinned while the shortlist is built."""
    chain = _chain(placement)
    models = _models(chain)
    if shopper_state is None:
        slot = state.slot_key(placement.slug, shopper, ask.requested, ask.product_id, ask.cart_product_ids)
        shopper_state = state.read(shopper, models=models, slot=slot)
    looked_up = False
    with registry.pinned({**shopper_state.models, **placement.model_versions}):
        if shopper and shopper_state.version is not None and shopper_state.opted_out is not True:
            # Computed under the shopper's current token, so while they had not opted out: opting
            # out renews the token (privacy.opt_out_recorded). Served without asking again.
            check = _check(placement, models, shopper_state.version, ask.limit)
            cached, looked_up = _valid(shopper_state.slot, check), True
            if cached is not None:
                return cached
        if shopper_state.is_opted_out():
            # Nothing personal; and what was cached before they opted out must not come back if they opt in.
            state.renew_versions([(shopper.user_id, shopper.session_key)])
            return _pinned_shortlist(placement, chain, models, state.ShopperState(state.NOBODY), ask)
        return _pinned_shortlist(placement, chain, models, shopper_state, ask, looked_up=looked_up)


#: Every model a strategy reads (what _placement_and_state reads before the placement is known).
_ALL_MODELS = _models(sources.MODELS)


def _pinned_shortlist(placement, chain, models, shopper_state, ask, looked_up=False):
    """The shortlist from its slot, else computed and stored there; `looked_up`: the caller found
    nothing valid for the shopper's version token already."""
    shopper = shopper_state.shopper
    version, new_version = shopper_state.version_token()
    slot = state.slot_key(placement.slug, shopper, ask.requested, ask.product_id, ask.cart_product_ids)
    check = _check(placement, models, version, ask.limit)
    if not (new_version or looked_up):  # nothing is cached under a token made just now
        cached = _valid(cache.get(slot), check)
        if cached is not None:
            return cached
    history, history_key = shoppers.history_of(shopper, version=version, new_version=new_version, write=False)
    cart = history.cart if ask.cart_product_ids is None else tuple(str(p) for p in ask.cart_product_ids)
    pool = _pool_size(placement, ask.limit)
    shortlist = _shortlist_of(placement, chain, sources.Context(history, ask.product_id, cart, pool))
    if history_key is not None and shoppers.CACHE_SECONDS == CACHE_SECONDS:  # the history just read too, at once
        cache.set_many({slot: (check, shortlist), history_key: history}, CACHE_SECONDS)
    else:
        if history_key is not None:
            cache.set(history_key, history, shoppers.CACHE_SECONDS)
        cache.set(slot, (check, shortlist), CACHE_SECONDS)
    return shortlist


def precomputed_keys(shopper):
    """The slots of `shopper`'s shortlists for every placement as a page asks for it by default (what
    precompute() fills, and most of what requests fill)."""
    slugs = [*Placement.objects.values_list("slug", flat=True), CART_PREDICTIONS_SLUG]
    return [state.slot_key(slug, shopper, None, None, None) for slug in dict.fromkeys(slugs)]


def _check(placement, models, version, limit):
    """What a shortlist in a slot must have been computed for to be served: the shopper's version
    token, the placement as saved, the limit and the loaded model versions."""
    stamp = placement.updated_at.timestamp() if placement.updated_at else 0
    parts = [placement.pk or placement.slug, stamp, placement.strategy, placement.fallback_strategy, limit, version or ""]
    return state.digest(parts + [sources.model_token(k) for k in models])


def _valid(entry, check):
    """The shortlist of a slot's (check, shortlist) entry when it was computed for `check`, else None."""
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == check:
        return entry[1]
    return None


def _shortlist_of(placement, chain, context, ready=None):
    history = context.history
    return Shortlist(
        candidates=_from_chain(placement, chain, context, ready),
        cart=context.cart,
        favourites=tuple((p, history.bought[p]) for p in history.favourites()),
    )


def _from_chain(placement, chain, context, ready=None):
    """The candidates of the chain's strategies in turn until the pool is full. `ready`: the first
    strategy's candidates, already generated with other shoppers'."""
    bought = set() if placement.shows_repeats else set(context.history.bought)
    found, seen = [], bought | {context.product_id}
    for strategy in chain:
        try:
            generated = ready if ready is not None and strategy == chain[0] else sources.generate(strategy, context)
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
    chain = _chain(placement)
    models = _models(chain)
    opted_out = privacy.opted_out_users(user_ids)
    owners = [state.Shopper(user_id=user_id) for user_id in user_ids if str(user_id) not in opted_out]
    if not owners:
        return 0
    limit = _limit(None, placement)
    with registry.pinned(registry.active_ids(models)):
        versions = state.version_tokens(owners)
        histories = shoppers.read_histories([owner.user_id for owner in owners])
        contexts = [
            sources.Context(history=history, product_id=None, cart=history.cart, pool=_pool_size(placement, limit))
            for history in histories
        ]
        try:
            first = sources.generate_many(chain[0], contexts)
        except sources.ModelUnavailable as reason:  # each shopper goes on down the chain, as a request would
            logger.info("Placement %r: %s; falling back", placement.slug, reason)
            first = [[]] * len(contexts)
        except Exception:
            logger.exception("Strategy %s of placement %r failed; falling back", chain[0], placement.slug)
            first = [[]] * len(contexts)
        entries = {
            state.slot_key(placement.slug, owner, None, None, None): (
                _check(placement, models, version, limit),
                _shortlist_of(placement, chain, context, ready),
            )
            for owner, version, context, ready in zip(owners, versions, contexts, first)
        }
    cache.set_many(entries, PRECOMPUTED_SECONDS)
    return len(entries)


# The shop's rules, on live data ---------------------------------------------------------------


def _serve(placement, shortlist, *, product_id, exclude, limit):
    """[(candidate, product info, anchor info)] of the first `limit` candidates the rules allow."""
    skip = set(exclude) | {product_id} | (set(shortlist.cart) if placement.exclude_in_cart else set())
    queue = [candidate for candidate in shortlist.candidates if candidate.product_id not in skip]
    adapter, chosen, drafts = get_adapter(), [], {}
    start, step = 0, max(2 * limit, 12)
    while start < len(queue):
        chunk = queue[start : start + step]
        start, step = start + step, step * 2  # when the rules reject many, look further each time
        wanted = {c.product_id for c in chunk} | {c.anchor for c in chunk if c.anchor}
        if any(c.reason in _FAVOURITE_REASONS for c in chunk):
            wanted |= {p for p, _ in shortlist.favourites}
        fresh = adapter.product_drafts(wanted)  # URLs are built for the served products only
        drafts.update(fresh)
        products = {pid: draft.info for pid, draft in fresh.items()}
        for candidate in chunk:
            info = products.get(candidate.product_id)
            if info is not None and allowed(placement, info):
                candidate = _same_shelf_anchor(candidate, info, shortlist.favourites, products)
                anchor = products.get(candidate.anchor)
                chosen.append((candidate, info, anchor if anchor is not None and anchor.active else None))
                if len(chosen) == limit:
                    return _finished(adapter, drafts, chosen)
    return _finished(adapter, drafts, chosen)


def _finished(adapter, drafts, chosen):
    """The served products' ProductInfo complete (an anchor only lends its title)."""
    return [(candidate, adapter.finish_product(drafts[info.id]), anchor) for candidate, info, anchor in chosen]


_FAVOURITE_REASONS = (explanations.BECAUSE_BOUGHT, explanations.BECAUSE_OFTEN_BOUGHT)


def _same_shelf_anchor(candidate, product, favourites, products):
    """A discovery explained by a favourite names, when it can, the favourite from the same
    category ("Because you often buy Italian Chickpeas" for other chickpeas): clearer to shoppers
    than the model's closest item."""
    if candidate.reason not in _FAVOURITE_REASONS or not product.category:
        return candidate
    for favourite, orders in favourites:
        info = products.get(favourite)
        if info is not None and info.category == product.category and favourite != product.id:
            reason = explanations.BECAUSE_OFTEN_BOUGHT if orders > 1 else explanations.BECAUSE_BOUGHT
            return replace(candidate, anchor=favourite, reason=reason)
    return candidate


def allowed(placement, product):
    """The shop's rules for one product (a ProductInfo): live, in stock, in the placement's categories and prices."""
    if not product.active or (product.stock is not None and product.stock <= 0):
        return False
    categories = {name.casefold() for name in product.every_category} or {""}
    if placement.included_categories and not categories & set(placement.included_categories):
        return False
    if categories & set(placement.excluded_categories):
        return False
    if product.price is not None:
        if placement.min_price is not None and product.price < placement.min_price:
            return False
        if placement.max_price is not None and product.price > placement.max_price:
            return False
    return True


def _popular_only(placement, product_id, cart_product_ids, exclude, limit):
    """The last resort when building recommendations failed: popular products, nothing personal."""
    try:
        context = sources.Context(shoppers.NOBODY, product_id, (), _pool_size(placement, limit))
        shortlist = Shortlist(sources.popular(context), cart=tuple(map(str, cart_product_ids or ())))
        return _serve(placement, shortlist, product_id=product_id, exclude=exclude, limit=limit)
    except Exception:
        logger.exception("Popular products for placement %r failed too; showing nothing", placement.slug)
        return []


def _item(candidate, product, anchor, links):
    text = explanations.explain(
        candidate.reason,
        anchor_title=anchor.title if anchor is not None else "",
        count=candidate.count,
        category=product.category,
    )
    return Recommendation(
        product=product,
        score=float(candidate.score),
        reason=candidate.reason,
        explanation=text,
        strategy=candidate.strategy,
        click_url=links.url(product),
    )


class _ClickLinks:
    """The tracked links of one Recommendations: each a signed token naming the recommendation, the
    product and the placement, in the plugin's click URL (resolved once per URLconf and language, not
    once per item); the product's own page when the plugin's URLs are not installed."""

    _MARK = "0token0"

    def __init__(self, recommendation_id, placement_slug):
        self.recommendation_id, self.placement_slug = recommendation_id, placement_slug
        self.template = self._template(url_context())

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _template(context):
        """The click URL with _MARK where the token goes, for the current adapters.url_context()
        (`context`: what the answer is remembered under; reverse() reads it from the request)."""
        try:
            return reverse("personalization:click", args=[_ClickLinks._MARK])
        except NoReverseMatch:
            return None

    def url(self, product):
        if self.template is None:
            return product.url
        token = attribution.click_token(self.recommendation_id, product.id, self.placement_slug)
        return self.template.replace(self._MARK, token, 1)
