"""A real Celery worker process retrains a tiny store end to end, and a worker killed in the middle of
training leaves the active version alone while the next run succeeds.

Needs Redis as the broker (CELERY_BROKER_URL=redis://host:port/N; the shared cache uses database N-1,
which the test empties) and PostgreSQL (DATABASE_URL): the worker uses the test's own database.
Skipped otherwise, and failed instead when PERSONALIZATION_REQUIRE_SERVICES=1 (CI).
"""
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from celery import current_app
from django.db import connection
from django.utils import timezone

from personalization import registry, tasks
from personalization.capture.events import Shopper
from personalization.models import Event, EventKind, ModelKind, ModelVersion, Placement, TrainingRun
from personalization.serving import candidates, precompute, ranking
from tests.personalization.stores import build_store, train_and_activate

pytestmark = pytest.mark.django_db(transaction=True)  # the worker must see what the test writes

TIMEOUT = 240  # seconds: a worker's start and a few trainings of the tiny store on a busy CI machine


def _missing_services():
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        return "CELERY_BROKER_URL does not point at Redis (redis://host:port/db)"
    if connection.vendor != "postgresql":
        return "the test database is not PostgreSQL (set DATABASE_URL=postgres://...): the worker must share it"
    parts = urlsplit(broker)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2).close()
    except OSError as exc:
        return f"Redis at {broker} is unreachable: {exc}"
    return ""


@pytest.fixture
def services():
    missing = _missing_services()
    if missing and os.environ.get("PERSONALIZATION_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PERSONALIZATION_REQUIRE_SERVICES=1 but {missing}")
    if missing:
        pytest.skip(f"needs a real Celery worker: {missing}")
    return os.environ["CELERY_BROKER_URL"]


def _cache_url(broker):
    """The broker's Redis, one database below the broker's (above, for database 0)."""
    parts = urlsplit(broker)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{db - 1 if db else 1}"))


def _database_url():
    db = connection.settings_dict  # its NAME is the test database's by now
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery -A shop worker` in its own process, with the test's database, media folder and cache."""

    def __init__(self, env, log_path, cwd):
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        command = [sys.executable, "-m", "celery", "-A", "shop", "worker", "--pool", "prefork", "--concurrency", "1"]
        command += ["--loglevel", "INFO", "--without-gossip", "--without-mingle", "-n", f"test-{os.getpid()}@%h"]
        self.process = subprocess.Popen(command, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, cwd=cwd)

    def log(self):
        self.log_file.flush()
        return self.log_path.read_text()[-6000:]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log_file.close()


@pytest.fixture
def worker(services, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url(services)}}
    from django.core.cache import cache

    cache.clear()
    registry.forget_loaded()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CACHE_URL": _cache_url(services),
        "CELERY_BROKER_URL": services,
        "DJANGO_DEBUG": "0",
    }
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    current_app.control.purge()  # messages a former run left in the queue
    started = Worker(env, tmp_path / "worker.log", cwd=settings.BASE_DIR)
    yield started
    started.stop()
    registry.forget_loaded()


def _recently_active(store):
    """Every shopper of the tiny store looked at a product yesterday."""
    yesterday = timezone.now() - timedelta(days=1)
    shoppers = store.shoppers["dairy"] + store.shoppers["bakery"]
    Event.objects.bulk_create(
        Event(kind=EventKind.VIEW, user_id=str(user.pk), product_id=str(store.product("Milk").pk), created_at=yesterday)
        for user in shoppers
    )
    return shoppers


def _wait_for_running_run(kind, worker, deadline):
    while time.monotonic() < deadline:
        run = TrainingRun.objects.filter(kind=kind, status="running").first()
        if run is not None:
            return run
        assert worker.process.poll() is None, f"the worker exited:\n{worker.log()}"
        time.sleep(0.05)
    raise AssertionError(f"no training started within {TIMEOUT}s:\n{worker.log()}")


def test_a_worker_retrains_the_store_promotes_a_version_and_precomputes_recommendations(worker, monkeypatch):
    store = build_store()
    shoppers = _recently_active(store)
    Placement.objects.get_or_create(
        slug="home-buy-again", defaults={"name": "Home: buy again", "page": "home", "strategy": "buy_again"}
    )

    started = time.monotonic()
    result = tasks.retrain.delay(triggered_by="worker test")
    try:
        version_ids = result.get(timeout=TIMEOUT)
        shards = [child.get(timeout=TIMEOUT) for child in result.children or []]
    except Exception as exc:
        raise AssertionError(f"{exc!r}; the worker's log:\n{worker.log()}") from exc
    took = time.monotonic() - started

    runs = {run.kind: run for run in TrainingRun.objects.all()}
    assert set(runs) == set(ModelKind.values) and all(run.status != "running" for run in runs.values())
    assert runs["next_basket"].status == "promoted", runs["next_basket"].message
    assert runs["next_basket"].triggered_by == "worker test"
    active = registry.active(ModelKind.NEXT_BASKET)
    assert active.pk in version_ids
    assert sorted(version_ids) == sorted(ModelVersion.objects.values_list("pk", flat=True))
    assert sum(map(sum, shards)) == len(shoppers), shards

    scored = []
    generate = candidates.generate
    monkeypatch.setattr(candidates, "generate", lambda strategy, context: scored.append(strategy) or generate(strategy, context))
    for user in shoppers:
        for placement in precompute.placements():
            assert ranking.recommend(placement, Shopper(user_id=user.pk)).items
    assert scored == [], "recommendations were computed again instead of read from what the worker precomputed"
    print(f"retrain of the tiny store through the worker: {took:.1f}s (worker start included)")


def test_a_worker_killed_mid_training_leaves_the_active_version_and_the_next_run_succeeds(worker):
    build_store()
    [active_before] = train_and_activate(kinds=(ModelKind.NEXT_BASKET,))
    deadline = time.monotonic() + TIMEOUT

    first = tasks.retrain.delay(kinds=[ModelKind.NEXT_BASKET], triggered_by="killed")
    killed = _wait_for_running_run(ModelKind.NEXT_BASKET, worker, deadline)
    host, _, pid = killed.worker.rpartition(":")
    assert host == socket.gethostname()
    os.kill(int(pid), signal.SIGKILL)
    first.get(timeout=TIMEOUT, propagate=False)

    assert first.state == "FAILURE", worker.log()
    assert registry.active(ModelKind.NEXT_BASKET) == active_before
    assert list(ModelVersion.objects.all()) == [active_before]

    second = tasks.retrain.delay(kinds=[ModelKind.NEXT_BASKET], triggered_by="next")
    try:
        [new_version_id] = second.get(timeout=TIMEOUT)
    except Exception as exc:
        raise AssertionError(f"{exc!r}; the worker's log:\n{worker.log()}") from exc

    killed.refresh_from_db()
    assert killed.status == "failed" and killed.message.startswith("worker lost:"), killed.message
    rerun = TrainingRun.objects.get(triggered_by="next")
    assert rerun.status in ("promoted", "kept_inactive"), rerun.message
    assert rerun.model_version.pk == new_version_id
