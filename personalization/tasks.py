"""Celery tasks: thin wrappers over the services, ids in and ids out (README, "Operations").

Queue work with `send` (now) or `send_on_commit` (when the caller's transaction commits). Neither
ever raises: with the broker down the failure is logged and the store carries on. A task that
meets a transient error (the database or the broker briefly unreachable) is retried with backoff.
"""
import logging

import kombu.exceptions
from celery import Task, shared_task
from django.core.cache import cache
from django.db import OperationalError, transaction

from personalization.capture import privacy
from personalization.conf import settings
from personalization.coupons import issuing as coupon_issuing
from personalization.learning import training
from personalization.models import ModelKind, ModelVersion
from personalization.serving import precompute

logger = logging.getLogger("personalization.tasks")

#: Errors worth another try a little later.
TRANSIENT_ERRORS = (OperationalError, kombu.exceptions.OperationalError)
RETRY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,  # 1 s, 2 s, 4 s ... with jitter
    "retry_backoff_max": 10 * 60,
    "retry_jitter": True,
    "max_retries": 5,
}


def send(task, *args, **kwargs):
    """Queues `task` now; returns its AsyncResult, or None when it could not be queued (logged)."""
    try:
        return task.delay(*args, **kwargs)
    except Exception:
        logger.exception("Could not queue %s; is the Celery broker (CELERY_BROKER_URL) reachable?", task.name)
        return None


def send_on_commit(task, *args, **kwargs):
    """Queues `task` once the current transaction commits (at once outside one); never raises."""
    transaction.on_commit(lambda: send(task, *args, **kwargs))


class TrainingTask(Task):
    """Goes to PERSONALIZATION["TRAINING_QUEUE"] (e.g. the GPU hosts' "gpu" queue) unless the caller
    or the schedule names another queue."""

    def apply_async(self, args=None, kwargs=None, **options):
        if settings.TRAINING_QUEUE and not options.get("queue"):
            options["queue"] = settings.TRAINING_QUEUE
        return super().apply_async(args, kwargs, **options)


@shared_task(base=TrainingTask, **RETRY)
def retrain(kinds=None, triggered_by=""):
    """Trains each model kind (default: all) on the store's purchases and promotes the versions that
    beat the active ones (training then queues the precomputation of recently active shoppers'
    recommendations). Returns the ids of the new ModelVersions."""
    kinds = list(kinds or ModelKind.values)
    unknown = sorted(set(kinds) - set(ModelKind.values))
    if unknown:
        raise ValueError(f"unknown model kind(s) {', '.join(unknown)}; known: {', '.join(ModelKind.values)}")
    runs = training.train(kinds, triggered_by=triggered_by or "task")
    return list(ModelVersion.objects.filter(training_run__in=runs).order_by("pk").values_list("pk", flat=True))


@shared_task(**RETRY)
def precompute_recommendations(first, last):
    """Warms the cached recommendations of the recently active shoppers with user ids from `first`
    to `last`; returns how many shoppers."""
    return precompute.warm_range(first, last)


@shared_task(**RETRY)
def purge_expired_events():
    """Deletes the events older than RETENTION_DAYS; returns how many."""
    return privacy.purge_expired_events()


@shared_task(**RETRY)
def sweep_lost_training_runs():
    """Marks failed ("worker lost") the trainings whose worker died or went silent, without waiting
    for the next training of their model; returns their ids."""
    return [run.pk for run in training.sweep_lost_runs()]


@shared_task(**RETRY)
def expire_coupons():
    """Marks unused coupons past their expiry as expired; returns how many."""
    return coupon_issuing.expire()


@shared_task(**RETRY)
def issue_abandoned_cart_coupons():
    """Issues the coupons of every running abandoned-cart campaign; returns {campaign id: coupons issued}."""
    return {str(campaign.pk): result.issued for campaign, result in coupon_issuing.issue_abandoned_cart_coupons().items()}


@shared_task
def cache_probe(key):
    """What this worker reads from the default cache under `key`: `manage.py personalization_doctor`
    compares it with what the web process wrote, to tell a cache the workers share from one of their own."""
    return cache.get(key)
