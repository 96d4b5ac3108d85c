"""Recommendations: what a placement shows one shopper, and what they will likely add to their cart.

    shopper = state.shopper_from(request)
    recs = ranking.recommend("home-for-you", shopper, ranking.Ask(limit=4))
    for item in recs: item.product.title, item.explanation, item.click_url
    ranking.cart_predictions(shopper, ranking.Ask(cart_product_ids=["12", "40"]))

The two use cases, each taking a placement (cart predictions: the "cart-completion" one), a
shopper and an Ask, go through one pipeline: the shopper's state (personalization.state) read with
the placement in one cache round trip -> the experiment arm (services.experiments) -> the
shortlist, cached per shopper and ask (services.shortlists: the placement's strategy, then its
fallback, then popular products) -> the shop's rules on live data (services.rules) -> an
explanation per item (services.explanations) and a tracked link (services.links). Nothing here
raises into a page but an unknown slug: a broken model or a failing query is logged and popular
products are served instead.
"""
import logging
from dataclasses import asdict, dataclass, field

from personalization import state
from personalization.adapters import ProductInfo
from personalization.cache import cache
from personalization.capture import attribution
from personalization.experiments import arms as experiments
from personalization.models import Placement
from personalization.models.placements import MAX_LIMIT
from personalization.serving import candidates as sources
from personalization.serving import explanations, links, rules, shoppers, shortlists

logger = logging.getLogger("personalization.ranking")

Strategy = Placement.Strategy

PLACEMENT_CACHE_SECONDS = 60
#: The placement cart_predictions() (and `{% cart_predictions %}`) serves.
CART_PREDICTIONS_SLUG = "cart-completion"


@dataclass(frozen=True)
class Ask:
    """What is asked of a placement besides who for; made valid once, here.

    `product_id`: the product of the page (bought together, similar; never recommended itself).
    `cart_product_ids`: what the cart holds; None reads it from the shopper's cart events.
    `limit`: at most this many items, a whole number from 1 to MAX_LIMIT (None, or anything that is
    not a whole number: the placement's). `exclude_product_ids`: products the page already shows."""

    product_id: str | None = None
    cart_product_ids: tuple | None = None
    limit: int | None = None
    exclude_product_ids: frozenset = frozenset()

    def __post_init__(self):
        product_id, cart = self.product_id, self.cart_product_ids
        object.__setattr__(self, "product_id", None if product_id in (None, "") else str(product_id))
        object.__setattr__(self, "cart_product_ids", None if cart is None else tuple(str(p) for p in cart))
        object.__setattr__(self, "limit", _whole_limit(self.limit))
        object.__setattr__(self, "exclude_product_ids", frozenset(self.exclude_product_ids))


def _whole_limit(limit):
    try:
        return max(1, min(int(limit), MAX_LIMIT))
    except (TypeError, ValueError):
        return None


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


# The use cases ----------------------------------------------------------------------------------


def recommend(placement, shopper, ask=None, **ask_fields):
    """The Recommendations of `placement` (a Placement, or its slug) for `shopper` (a state.Shopper;
    empty for nobody known) and `ask` (an Ask, or its fields as keywords).

    A slug is read with the shopper's state in one cache round trip; an unknown one raises
    Placement.DoesNotExist. Otherwise never raises; an inactive placement gives no items."""
    ask = _ask(ask, ask_fields)
    if isinstance(placement, str):
        placement, shopper_state = _placement_and_state(placement, shopper, ask)
        return _recommend(placement, shopper, ask, shopper_state)
    return _recommend(placement, shopper, ask)


def cart_predictions(shopper, ask=None, **ask_fields):
    """What `shopper` is likely to add to their cart (Ask.cart_product_ids; None: the cart recorded for
    them), from the "cart-completion" placement (or its defaults when the shop deleted it)."""
    ask = _ask(ask, ask_fields)
    try:
        placement, shopper_state = _placement_and_state(CART_PREDICTIONS_SLUG, shopper, ask)
    except Placement.DoesNotExist:
        placement, shopper_state = _default_cart_placement(), None
    return _recommend(placement, shopper, ask, shopper_state)


def placement_by_slug(slug, shopper_state=None):
    """The Placement with this slug (cached briefly); raises Placement.DoesNotExist. `shopper_state`:
    a state.ShopperState read with the placement (None: read the cache here)."""
    key = Placement.cache_key(slug)
    placement = cache.get(key) if shopper_state is None else shopper_state.placement
    if placement is None:
        placement = Placement.objects.get(slug=slug)
        cache.set(key, placement, PLACEMENT_CACHE_SECONDS)
    return placement


def precomputed_keys(shopper):
    """The slots of `shopper`'s shortlists for every placement as a page asks for it by default (what
    shortlists.precompute fills, and most of what requests fill): what erasing a shopper deletes."""
    slugs = [*Placement.objects.values_list("slug", flat=True), CART_PREDICTIONS_SLUG]
    return [state.slot_key(slug, shopper, None, None, None) for slug in dict.fromkeys(slugs)]


# The pipeline -----------------------------------------------------------------------------------


def _ask(ask, fields):
    if ask is None:
        return Ask(**fields)
    if fields:
        raise TypeError("give an Ask or its fields, not both")
    return ask


def _placement_and_state(slug, shopper, ask):
    """(the placement `slug`, the state.ShopperState of `shopper` for it: every model a strategy may
    need, since the placement is not known yet, and the slot of `ask`), in one round trip. When the
    cache fails, the state is left to the shortlist, which falls back to popular products."""
    try:
        shopper_state = state.read(
            shopper, models=shortlists.ALL_MODELS, slot=shortlists.slot_of(slug, shopper, ask), placement_slug=slug
        )
    except Exception:
        logger.exception("Could not read the state of placement %r from the cache", slug)
        return placement_by_slug(slug), None
    return placement_by_slug(slug, shopper_state=shopper_state), shopper_state


def _recommend(placement, shopper, ask, shopper_state=None):
    # The shopper's arm when an experiment runs on the placement (its exposure recorded).
    placement = experiments.placement_for(placement, shopper, shopper_state)
    recommendation_id = attribution.new_recommendation_id(shopper)
    limit = ask.limit or placement.limit
    items, strategy = [], placement.strategy
    if placement.active:
        try:
            shortlist = shortlists.shortlist(placement, shopper, ask, shopper_state)
            token = state.catalog_token(shopper_state.catalog) if shopper_state is not None else None
            items = rules.serve(
                placement,
                shortlist,
                product_id=ask.product_id,
                exclude=ask.exclude_product_ids,
                limit=limit,
                catalog_token=token,
            )
        except Exception:
            logger.exception("Recommendations of placement %r failed; serving popular products", placement.slug)
            items = _popular_only(placement, ask, limit)
        strategy = items[0][0].strategy if items else strategy
    click_links = links.ClickLinks(recommendation_id, placement.slug) if items else None
    return Recommendations(
        placement=placement,
        recommendation_id=recommendation_id,
        heading=explanations.heading(placement, strategy),
        items=[_item(candidate, info, anchor, click_links) for candidate, info, anchor in items],
    )


def _default_cart_placement():
    """The "cart-completion" placement's defaults (unsaved), for a shop that deleted it."""
    return Placement(
        slug=CART_PREDICTIONS_SLUG,
        name="Cart completion",
        page=Placement.Page.CART,
        strategy=Strategy.CART_COMPLETION,
        fallback_strategy=Strategy.BOUGHT_TOGETHER,
        limit=4,
    )


def _popular_only(placement, ask, limit):
    """The last resort when building recommendations failed: popular products, nothing personal."""
    try:
        context = sources.Context(shoppers.NOBODY, ask.product_id, (), shortlists.pool_size(placement, limit))
        shortlist = shortlists.Shortlist(sources.popular(context), cart=ask.cart_product_ids or ())
        return rules.serve(placement, shortlist, product_id=ask.product_id, exclude=ask.exclude_product_ids, limit=limit)
    except Exception:
        logger.exception("Popular products for placement %r failed too; showing nothing", placement.slug)
        return []


def _item(candidate, product, anchor, click_links):
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
        click_url=click_links.url(product),
    )
