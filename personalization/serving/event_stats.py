"""What the store's events say about products, for every shopper alike: popular, trending, bought
together, and which products are related (co-purchase lift, for explanations and similar products).

Each figure but the last is one aggregate query, cached in Django's cache and recomputed by one
request at a time once it is older than its freshness (the others keep serving the previous
figures), so no request scans the event table. The relations are counted over every basket of the
last RELATED_DAYS, in each process (tens of megabytes: too large for a cache entry), once per model
version that does not carry its own (see scoring.related_products) and new purchases.
"""
import math
import threading
import time
from datetime import timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from personalization.cache import cache
from personalization.learning.frames import purchase_frame
from personalization.ml.related import Related, item_categories
from personalization.ml.sequences import SPECIAL_ITEMS, Vocabulary, build_sequences
from personalization.models import Event, EventKind

#: How many products each list keeps, best first.
LIST_SIZE = 500
POPULAR_DAYS = 90
TRENDING_DAYS = 7
#: The latest orders of a product that "bought together" reads.
TOGETHER_ORDERS = 500
#: Pairs in fewer orders than this are left out of "bought together" when it has enough others.
MIN_TOGETHER = 2
MIN_TOGETHER_PRODUCTS = 10
FRESH_SECONDS = {"popular": 15 * 60, "trending": 5 * 60, "together": 60 * 60}
#: The purchases the relations are counted over.
RELATED_DAYS = 365
KEEP_SECONDS = 24 * 60 * 60
_REFRESH_LOCK_SECONDS = 60


def _cached(key, fresh_seconds, compute):
    """The cached value of `key`; recomputed when older than `fresh_seconds`, by one caller only."""
    entry = cache.get(key)
    now = time.time()
    if entry is not None:
        computed_at, value = entry
        if now - computed_at < fresh_seconds or not cache.add(f"{key}:refreshing", 1, _REFRESH_LOCK_SECONDS):
            return value
    value = compute()
    cache.set(key, (now, value), KEEP_SECONDS)
    cache.delete(f"{key}:refreshing")
    return value


def popular():
    """[(product_id, orders)] of the products in the most orders of the last POPULAR_DAYS (all time
    when the store has too few recent orders to fill a list)."""
    return _cached("personalization:stats:popular", FRESH_SECONDS["popular"], _count_popular)


def _count_popular():
    purchases = Event.objects.filter(kind=EventKind.PURCHASE)
    recent = _count_orders(purchases.filter(created_at__gte=timezone.now() - timedelta(days=POPULAR_DAYS)))
    if len(recent) >= LIST_SIZE:
        return recent
    seen = {product for product, _ in recent}
    return recent + [row for row in _count_orders(purchases) if row[0] not in seen][: LIST_SIZE - len(recent)]


def _count_orders(purchases):
    rows = purchases.order_by().values("product_id").annotate(n=Count("id")).order_by("-n", "product_id")
    return [(row["product_id"], row["n"]) for row in rows[:LIST_SIZE]]


def trending():
    """[(product_id, score)]: what shoppers bought (2 points) and put in their carts (1 point) in
    the last TRENDING_DAYS."""
    return _cached("personalization:stats:trending", FRESH_SECONDS["trending"], _count_trending)


def _count_trending():
    since = timezone.now() - timedelta(days=TRENDING_DAYS)
    rows = (
        Event.objects.filter(created_at__gte=since, kind__in=[EventKind.PURCHASE, EventKind.CART_ADD])
        .order_by()
        .values("product_id")
        .annotate(
            purchases=Count("id", filter=Q(kind=EventKind.PURCHASE)),
            additions=Count("id", filter=Q(kind=EventKind.CART_ADD)),
        )
    )
    scored = sorted(((row["product_id"], 2 * row["purchases"] + row["additions"]) for row in rows), key=lambda r: (-r[1], r[0]))
    return scored[:LIST_SIZE]


def bought_with(product_id):
    """[(other product_id, strength)], strongest first: the products in the same orders as
    `product_id` (its latest TOGETHER_ORDERS). Strength is the cosine of the two products' orders,
    together / sqrt(orders of one * orders of the other), so a staple that is in every basket does
    not top every list; pairs seen only once are dropped when there are enough others."""
    product_id = str(product_id)
    return _cached(f"personalization:stats:together:{product_id}", FRESH_SECONDS["together"], lambda: _count_together(product_id))


def _count_together(product_id):
    orders = list(
        Event.objects.filter(kind=EventKind.PURCHASE, product_id=product_id)
        .exclude(order_id="")
        .order_by("-created_at")
        .values_list("order_id", flat=True)[:TOGETHER_ORDERS]
    )
    if not orders:
        return []
    orders = set(orders)
    rows = (
        Event.objects.filter(kind=EventKind.PURCHASE, order_id__in=orders)
        .exclude(product_id=product_id)
        .order_by()
        .values("product_id")
        .annotate(n=Count("order_id", distinct=True))
        .order_by("-n", "product_id")
    )
    together = [(row["product_id"], row["n"]) for row in rows[:LIST_SIZE]]
    repeated = [(other, n) for other, n in together if n >= MIN_TOGETHER]
    if len(repeated) >= MIN_TOGETHER_PRODUCTS:
        together = repeated
    # Orders of the other product: from the popular list (products outside it are rarer than its last).
    orders_of = dict(popular())
    rarest = min(orders_of.values(), default=1)
    strength = [(other, n / math.sqrt(len(orders) * max(orders_of.get(other, rarest), n))) for other, n in together]
    return sorted(strength, key=lambda pair: (-pair[1], pair[0]))


_related = {"counted": None, "related": None}  # this process's latest relations: what they were counted from, them
_related_lock = threading.Lock()


def copurchases(vocabulary):
    """ml.related.Related of the items of `vocabulary`, counted over the purchases of the last
    RELATED_DAYS; counted again only when purchases were recorded since (one aggregate query tells)."""
    purchases = Event.objects.filter(kind=EventKind.PURCHASE)
    with _related_lock:
        counted = purchases.aggregate(n=Count("id"), last=Max("id"), latest=Max("created_at"))
        if _related["counted"] != counted:
            _related["related"] = _count_related(timezone.now() - timedelta(days=RELATED_DAYS))
            _related["counted"] = counted
        related, own = _related["related"]
    if own == vocabulary:
        return related
    return related.reindexed(vocabulary.encode(list(own.items)), len(vocabulary))


def _count_related(since):
    """(Related, its Vocabulary) of the purchases since `since`."""
    frame = purchase_frame(since=since)
    if not len(frame):
        vocabulary = Vocabulary(SPECIAL_ITEMS)
        return Related.empty(len(vocabulary)), vocabulary
    sequences = build_sequences(frame)
    categories, names = item_categories(frame["product_id"].astype(str), frame["category"].astype(str), sequences.vocabulary)
    return Related.from_sequences(sequences, categories, names), sequences.vocabulary
