"""What a shopper did, read from their events: past baskets, the current cart, recent views.

One indexed query over the shopper's latest events, cached under their version token (see
`personalization.state`), so every placement of a page shares it and a new event renews it.
"""
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from personalization import state
from personalization.cache import cache
from personalization.models import Event, EventKind

#: The latest events read per shopper: enough for the models' windows and the repeat statistics.
MAX_EVENTS = 1000
#: Views older than this are not part of the current visit.
RECENT_VIEW_HOURS = 24
RECENT_VIEWS = 10
CACHE_SECONDS = 10 * 60

_KINDS = [EventKind.PURCHASE, EventKind.CART_ADD, EventKind.CART_REMOVE, EventKind.VIEW]


@dataclass(frozen=True)
class ShopperHistory:
    baskets: tuple = ()  # tuples of product ids, one per order, oldest first
    bought: dict = field(default_factory=dict)  # product id -> how many of those orders held it
    cart: tuple = ()  # what the cart holds now (added and not removed since the last purchase), oldest first
    viewed: tuple = ()  # products viewed recently, most recent first, not in the cart

    def __bool__(self):
        return bool(self.baskets or self.cart or self.viewed)

    @property
    def session_items(self):
        """The current visit: the cart, then what was viewed."""
        return self.cart + self.viewed

    def favourites(self, n=10):
        """The products bought most often (most recent first among equals)."""
        recency = {product: rank for rank, basket in enumerate(self.baskets) for product in basket}
        return sorted(self.bought, key=lambda p: (-self.bought[p], -recency[p]))[:n]


NOBODY = ShopperHistory()


def history_of(shopper, *, version=None, new_version=False, write=True):
    """The ShopperHistory of an events.Shopper (NOBODY for a shopper without user or session).

    `version`: their version token when the caller has it; `new_version`: it was just
    created, so nothing is cached under it yet. `write=False`: returns (history, the cache key to
    store it under for CACHE_SECONDS, or None when it came from the cache), for a caller that
    writes it with its own entries in one round trip."""
    if not shopper:
        return (NOBODY, None) if not write else NOBODY
    if version is None:
        version, new_version = state.version_token(shopper)
    key = state.history_key(shopper, version)
    found = None if new_version else cache.get(key)
    to_write = None
    if found is None:
        found, to_write = read_history(shopper), key
        if write:
            cache.set(key, found, CACHE_SECONDS)
    return found if write else (found, to_write)


def read_history(shopper):
    owner = {"user_id": str(shopper.user_id)} if shopper.user_id else {"session_key": shopper.session_key, "user_id": ""}
    rows = list(
        Event.objects.filter(**owner, kind__in=_KINDS)
        .order_by("-created_at", "-id")
        .values_list("kind", "product_id", "order_id", "quantity", "created_at")[:MAX_EVENTS]
    )
    rows.reverse()  # oldest first
    return summarize(rows, now=timezone.now())


def read_histories(user_ids):
    """[ShopperHistory] of signed-in shoppers, in the order of `user_ids`, read in one query
    (precomputing: as read_history for each)."""
    rows_of = {str(user_id): [] for user_id in user_ids}
    # The kinds are picked here, not in SQL: with both filters SQLite's planner (without ANALYZE
    # statistics) walks the kind index over every purchase in the store, 15x slower than the
    # shoppers' own events through their index.
    rows = (
        Event.objects.filter(user_id__in=list(rows_of))
        .order_by("user_id", "created_at", "id")
        .values_list("user_id", "kind", "product_id", "order_id", "quantity", "created_at")
    )
    kinds = set(_KINDS)
    for user_id, *row in rows.iterator(chunk_size=5000):
        if row[0] in kinds:
            rows_of[user_id].append(tuple(row))
    now = timezone.now()
    return [summarize(rows_of[str(user_id)][-MAX_EVENTS:], now=now) for user_id in user_ids]


def summarize(rows, now):
    """(kind, product_id, order_id, quantity, created_at) rows, oldest first -> ShopperHistory."""
    baskets, basket_of_order = [], {}
    last_purchase = None
    for kind, product_id, order_id, _, created_at in rows:
        if kind != EventKind.PURCHASE:
            continue
        key = order_id or created_at
        if key not in basket_of_order:
            basket_of_order[key] = len(baskets)
            baskets.append([])
        basket = baskets[basket_of_order[key]]
        if product_id not in basket:
            basket.append(product_id)
        last_purchase = created_at
    bought = {}
    for basket in baskets:
        for product_id in basket:
            bought[product_id] = bought.get(product_id, 0) + 1

    quantities, viewed_at = {}, {}
    view_cutoff = now - timedelta(hours=RECENT_VIEW_HOURS)
    for kind, product_id, _, quantity, created_at in rows:
        if last_purchase is not None and created_at <= last_purchase:
            continue
        if kind == EventKind.CART_ADD:
            quantities[product_id] = quantities.get(product_id, 0) + quantity
        elif kind == EventKind.CART_REMOVE:
            quantities[product_id] = quantities.get(product_id, 0) - quantity
        elif kind == EventKind.VIEW and created_at >= view_cutoff:
            viewed_at[product_id] = created_at
    cart = tuple(product for product, quantity in quantities.items() if quantity > 0)
    viewed = sorted((p for p in viewed_at if p not in cart), key=lambda p: viewed_at[p], reverse=True)
    return ShopperHistory(
        baskets=tuple(tuple(basket) for basket in baskets),
        bought=bought,
        cart=cart,
        viewed=tuple(viewed[:RECENT_VIEWS]),
    )
