"""The model registry: publish, activate, roll back and load trained model versions.

A version is a `ModelVersion` row plus an artifact (an `ml.checkpoint`) stored through Django's
storage API. This is the one place artifacts are read: serving and audiences call
`load_active(kind)`, which notices a newly activated version within `ACTIVE_CHECK_SECONDS` (at
once with a shared cache such as Redis), without a restart, and falls back to the previously active
versions when an artifact is missing or corrupt; training and the admin read one version with `load`.
"""
import contextlib
import contextvars
import logging
import math
import threading
import time
import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Case, Max, Q, When
from django.utils import timezone

from personalization.cache import cache
from personalization.ml import checkpoint
from personalization.models import ModelVersion

logger = logging.getLogger("personalization.registry")

ACTIVE_CHECK_SECONDS = 10
#: Loaded versions kept per kind and process: the active one, and one an experiment arm serves.
LOADED_PER_KIND = 2
_loaded = {}  # kind -> {version id: (loaded object or None, retry after)}, oldest first, per process
_lock = threading.Lock()


def _active_key(kind):
    return f"personalization:active-version:{kind}"


def json_safe(value):
    """`value` with every NaN or infinite number as None: a metric no shopper could give (nobody's
    held-out basket had anything new) is stored as null, which JSON (and so a JSONField) accepts."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def publish(kind, artifact, *, algorithm="", metrics=None, config=None, data_window=None, training_run=None):
    """Stores a new, inactive version of `kind` with its artifact bytes (a checkpoint) and the
    `algorithm` it runs; returns the ModelVersion. Its code version is the model code's, the one
    every checkpoint records."""
    with transaction.atomic():
        latest = ModelVersion.objects.select_for_update().filter(kind=kind).aggregate(n=Max("number"))["n"] or 0
        version = ModelVersion(
            kind=kind,
            number=latest + 1,
            algorithm=algorithm,
            metrics=json_safe(metrics or {}),
            config=json_safe(config or {}),
            data_window=data_window or {},
            code_version=checkpoint.CODE_VERSION,
            training_run=training_run,
        )
        version.artifact.save(f"{kind}/v{latest + 1}-{uuid.uuid4().hex[:12]}.pt", ContentFile(artifact), save=False)
        version.save()
    return version


def active(kind):
    """The active version of `kind`, or None."""
    return ModelVersion.objects.filter(kind=kind, is_active=True).first()


def activate(version):
    """Makes `version` the one active version of its kind."""
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(kind=version.kind, is_active=True).exclude(
            pk=version.pk
        ).update(is_active=False)
        version.is_active = True
        version.activated_at = timezone.now()
        version.save(update_fields=["is_active", "activated_at"])
        # This process sees the change at once; every process sees it once the transaction commits.
        cache.delete(_active_key(version.kind))
        _loaded.pop(version.kind, None)
        transaction.on_commit(lambda: cache.set(_active_key(version.kind), version.pk, ACTIVE_CHECK_SECONDS))
    logger.info("Activated %s", version)
    return version


def rollback(kind):
    """Re-activates the version that was active before the current one; returns it, or None."""
    current = active(kind)
    previous = (
        ModelVersion.objects.filter(kind=kind, activated_at__isnull=False)
        .exclude(pk=getattr(current, "pk", None))
        .order_by("-activated_at")
        .first()
    )
    if previous is None:
        return None
    return activate(previous)


_pinned = contextvars.ContextVar("personalization_pinned_versions", default=None)


def active_key(kind):
    """The cache key of the active version id of `kind` (for callers reading several keys at once)."""
    return _active_key(kind)


def active_ids(kinds, cached=None):
    """{kind: active version id or None} of `kinds`. `cached`: {kind: the value already read from the
    cache under active_key(kind), or None}; without it the keys are read here in one round trip. The
    kinds the cache lacks come from the database, in one query, and are cached for the next request."""
    if cached is None:
        found = cache.get_many([_active_key(kind) for kind in kinds]) if kinds else {}
        cached = {kind: found.get(_active_key(kind)) for kind in kinds}
    pins = _pinned.get() or {}
    missing = [kind for kind in kinds if cached.get(kind) is None and kind not in pins]
    stored = _active_in_database(missing) if missing else {}
    ids = {}
    for kind in kinds:
        if cached.get(kind) is not None:
            ids[kind] = cached[kind] or None
        else:
            ids[kind] = pins[kind] if kind in pins else stored[kind] or None
    return ids


def _active_in_database(kinds):
    """{kind: the active version id, 0 for none} of `kinds`, from the database (one query), cached."""
    active = dict(ModelVersion.objects.filter(kind__in=kinds, is_active=True).values_list("kind", "pk"))
    found = {kind: active.get(kind, 0) for kind in kinds}
    cache.set_many({_active_key(kind): version_id for kind, version_id in found.items()}, ACTIVE_CHECK_SECONDS)
    return found


@contextlib.contextmanager
def pinned(version_ids):
    """Within the block, load_active(kind) serves the version id `version_ids[kind]` read once before
    (active_ids) instead of asking the cache again: one look-up per request, and one version throughout."""
    token = _pinned.set({**(_pinned.get() or {}), **version_ids})
    try:
        yield
    finally:
        _pinned.reset(token)


def _active_id(kind):
    pins = _pinned.get()
    if pins is not None and kind in pins:
        return pins[kind]
    version_id = cache.get(_active_key(kind))
    if version_id is None:
        version_id = _active_in_database([kind])[kind]
    return version_id or None


def load(version):
    """The loaded checkpoint (ml.checkpoint.Checkpoint) of `version`; raises when its artifact is
    missing or is not a checkpoint this code can load."""
    with version.artifact.open("rb") as artifact:
        return checkpoint.load(artifact.read())


def load_active(kind):
    """The loaded checkpoint of the version of `kind` that serves here: the active one, or the one
    pinned for the block (an experiment arm's). Cached per process, LOADED_PER_KIND versions a kind.

    A missing or corrupt artifact is logged and the versions active before it are tried in turn;
    None means nothing can serve and the caller falls back (to popularity)."""
    version_id = _active_id(kind)
    loaded = _loaded.setdefault(kind, {})
    cached = loaded.get(version_id)
    # A loaded model serves until another version is activated; "nothing can load" is believed for
    # ACTIVE_CHECK_SECONDS, so a store with no model yet doesn't query and retry on every request.
    if cached and (cached[0] is not None or time.monotonic() < cached[1]):
        loaded[version_id] = loaded.pop(version_id, cached)  # the most recently used last
        return cached[0]
    with _lock:
        candidates = ModelVersion.objects.filter(Q(pk=version_id) | Q(activated_at__isnull=False), kind=kind).order_by(
            Case(When(pk=version_id, then=0), default=1), "-is_active", "-activated_at"
        )
        found = None
        for version in candidates:
            try:
                found = load(version)
                break
            except Exception:
                logger.exception("Cannot load %s from %s; trying the version active before it", version, version.artifact.name)
        loaded.pop(version_id, None)
        loaded[version_id] = (found, None if found is not None else time.monotonic() + ACTIVE_CHECK_SECONDS)
        while len(loaded) > LOADED_PER_KIND:
            loaded.pop(next(iter(loaded)))
    return found


def forget_loaded():
    """Drops this process's loaded models (tests; memory)."""
    _loaded.clear()
