"""Recommendations computed before shoppers visit.

Activating a model makes every cached recommendation stale (the cache key names the model version),
so when a training run promotes a version that placements read, it calls `start`: the workers
compute the recommendations of recently active shoppers, shard by shard (the task
`personalization.tasks.precompute_recommendations`, queued by name), a batch of shoppers at a time,
and their first page view is served from the cache (the shop's rules still run on live data then).
Only a cache the web processes share (Redis, see README "Operations") makes this useful; what is
computed lives as long as services.shortlists caches it.
"""
import logging
from datetime import timedelta

from celery import group, signature
from django.utils import timezone

from personalization.conf import settings
from personalization.models import Event, Placement
from personalization.models.placements import ANCHORED_STRATEGIES
from personalization.serving import candidates, shortlists

logger = logging.getLogger("personalization.precompute")

#: The task that warms one shard (personalization.tasks; services queue tasks by name).
TASK = "personalization.tasks.precompute_recommendations"
#: The model kinds placements read: a new active version of one of them makes the cache stale.
MODEL_KINDS = frozenset(kind for kinds in candidates.MODELS.values() for kind in kinds)
#: Shoppers per precompute task.
SHARD_SIZE = 500
#: Shoppers ranked together (one history query, one forward pass per model).
BATCH_SIZE = 250


def placements():
    """The active placements a page shows with no product or cart to start from (home, order
    confirmation): what a shopper sees first, the same whatever page they came from."""
    return [
        placement
        for placement in Placement.objects.filter(active=True).exclude(page=Placement.Page.PRODUCT)
        if placement.strategy not in ANCHORED_STRATEGIES and placement.strategy != Placement.Strategy.CART_COMPLETION
    ]


def recent_shoppers(first=None, last=None, now=None):
    """The user ids of signed-in shoppers with events in the last PRECOMPUTE_ACTIVE_DAYS, in the
    database's order, from `first` to `last` (both included) when given."""
    days = settings.PRECOMPUTE_ACTIVE_DAYS
    if not days:
        return Event.objects.none().values_list("user_id", flat=True)
    since = (now or timezone.now()) - timedelta(days=days)
    ids = Event.objects.filter(created_at__gte=since).exclude(user_id="")
    if first is not None:
        ids = ids.filter(user_id__gte=first)
    if last is not None:
        ids = ids.filter(user_id__lte=last)
    return ids.order_by("user_id").values_list("user_id", flat=True).distinct()


def shards(size=SHARD_SIZE, now=None):
    """[(first, last)]: ranges of at most `size` recently active shoppers each, covering them all.
    The database orders and compares the ids, so any kind of user key splits consistently."""
    ids = list(recent_shoppers(now=now))
    return [(ids[start], ids[min(start + size, len(ids)) - 1]) for start in range(0, len(ids), size)]


def start():
    """Queues one precompute task per shard of recently active shoppers, as a group; returns the
    number of shards. A broker that is down is logged: the new models serve anyway."""
    found = shards()
    if found:
        try:
            group(signature(TASK, args=(first, last)) for first, last in found).apply_async()
        except Exception:
            logger.exception("Could not queue the precomputation of %d shard(s) of shoppers", len(found))
    return len(found)


def warm(user_ids, shown=None):
    """Computes and caches the recommendations of each placement in `shown` (default: placements())
    for the signed-in shoppers `user_ids`, in batches (shortlists.precompute: one history query and one
    forward pass per batch). Returns how many shoppers."""
    shown = placements() if shown is None else shown
    user_ids = list(user_ids)
    if not shown:
        return 0
    for placement in shown:
        for start in range(0, len(user_ids), BATCH_SIZE):
            shortlists.precompute(placement, user_ids[start : start + BATCH_SIZE])
    return len(user_ids)


def warm_range(first, last, now=None):
    """Warms the recommendations of the recently active shoppers from `first` to `last`; returns
    how many shoppers."""
    return warm(recent_shoppers(first, last, now))
