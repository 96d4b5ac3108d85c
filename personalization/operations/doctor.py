"""What works and what doesn't in a store that installed the plugin, each finding with its fix.

`examine()` reads a sample of products through the configured adapter, looks at the recent events
and the active models, asks the Celery workers and the cache; `manage.py personalization_doctor`
prints the findings. It never raises: an examination that fails unexpectedly is itself a finding.
"""
import itertools
import logging
import queue
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings as django_settings
from django.core import checks
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.utils import timezone
from kombu.utils.url import maybe_sanitize_url

from personalization import registry
from personalization.adapters import get_adapter
from personalization.conf import DEFAULTS, settings
from personalization.models import Event, EventKind, EventSource, ModelKind, ModelVersion, TrainingRun

logger = logging.getLogger("personalization.doctor")

LEVELS = ("ok", "info", "warning", "error")
#: Cache backends each process keeps to itself: what a worker writes, a web process never reads.
PER_PROCESS_CACHES = ("LocMemCache", "DummyCache")
PROBE_TASK = "personalization.tasks.cache_probe"

# id -> (level, message, hint); kept together so ids stay stable. The letters: E error, W warning,
# I info, OK what works. {names} are filled in per finding.
FINDINGS = {
    "doctor.OK001": ("ok", "The plugin's system checks pass.", ""),
    "doctor.E001": (
        "error",
        "An examination failed unexpectedly ({name}): {detail}",
        "The detail says what failed (a database that cannot be reached shows here); the log has the traceback.",
    ),
    "doctor.OK002": ("ok", "{count} product(s) read through {adapter}.", ""),
    "doctor.E002": (
        "error",
        "Products cannot be read through {adapter}: {detail}",
        "Fix PERSONALIZATION['PRODUCT_MODEL'] or ['PRODUCT_FIELDS'] as the plugin's checks say (`manage.py check`), "
        "or the catalog() of a custom adapter.",
    ),
    "doctor.W001": (
        "warning",
        "{adapter}.catalog() gave no products: nothing can be recommended.",
        "Add products to the store, or point PERSONALIZATION['PRODUCT_MODEL'] at the model that holds them "
        "(a custom adapter: implement catalog()).",
    ),
    "doctor.W002": (
        "warning",
        "None of the {count} sampled products has a price: price rules and coupon thresholds cannot apply.",
        "Set PERSONALIZATION['PRODUCT_FIELDS']['price'] to the field holding the price (e.g. 'price' or "
        "'stockrecords__price').",
    ),
    "doctor.W003": (
        "warning",
        "None of the {count} sampled products has a stock count: the store is treated as one that does not "
        "count stock, so sold-out products may be recommended.",
        "If the store counts stock, set PERSONALIZATION['PRODUCT_FIELDS']['stock'] (e.g. 'stock' or "
        "'stockrecords__num_in_stock'); if it does not, nothing to do.",
    ),
    "doctor.W004": (
        "warning",
        "None of the {count} sampled products has a category: category rules and explanations cannot apply.",
        "Set PERSONALIZATION['PRODUCT_FIELDS']['category'] to a name, e.g. 'category__name' or 'categories__name'.",
    ),
    "doctor.I001": (
        "info",
        "Of the {count} sampled products, {inactive} are inactive and {sold_out} out of stock: they are never "
        "recommended.",
        "",
    ),
    "doctor.OK003": ("ok", "{count} event(s) recorded in the last {days} days.", ""),
    "doctor.W005": (
        "warning",
        "No event recorded in the last {days} days (the latest: {latest}).",
        "Check PERSONALIZATION['RECORD_EVENTS'], ['CART_LINE_MODEL'] and ['ORDER_LINE_MODEL']: add a product "
        "to a cart in the store and run the doctor again.",
    ),
    "doctor.OK004": ("ok", "{count} purchase(s) recorded from the live store in the last {days} days.", ""),
    "doctor.W006": (
        "warning",
        "No order signal seen in the last {days} days: no purchase recorded from the live store.",
        "Place a test order; check PERSONALIZATION['ORDER_PLACED_SIGNAL'] (sent once the order's lines exist) "
        "and ['ORDER_LINE_MODEL'] / ['ORDER_LINE_FIELDS'].",
    ),
    "doctor.OK005": ("ok", "The {kind} model is active: version {number}.", ""),
    "doctor.W007": (
        "warning",
        "No active {kind} model ({trained} version(s) trained, none active; the last training: {last}): what it "
        "serves falls back to rules and popularity.",
        "Run `manage.py personalization_train --model all`; a version stays inactive until it beats the baselines, "
        "which may take more orders.",
    ),
    "doctor.OK006": ("ok", "The cache '{alias}' ({backend}) stores and reads.", ""),
    "doctor.E003": (
        "error",
        "The cache '{alias}' ({backend}) cannot be used: {detail}",
        "Start the cache server, or correct CACHES['{alias}'] (its LOCATION).",
    ),
    "doctor.E004": (
        "error",
        "The cache '{alias}' is {backend}, one per process, while tasks run in workers: workers and web "
        "processes don't share this cache (new models and precomputed recommendations go unseen).",
        "Use a shared cache for CACHES['{alias}'], e.g. Redis: "
        "{{'BACKEND': 'django.core.cache.backends.redis.RedisCache', 'LOCATION': 'redis://127.0.0.1:6379/1'}}.",
    ),
    "doctor.I002": (
        "info",
        "Celery tasks run in this process (task_always_eager): there is no worker to ask.",
        "",
    ),
    "doctor.E005": (
        "error",
        "The Celery broker at {broker} is unreachable: {detail}",
        "Start the broker, or correct CELERY_BROKER_URL (the same for web processes and workers).",
    ),
    "doctor.OK007": ("ok", "{count} Celery worker(s) answered: {workers}.", ""),
    "doctor.W008": (
        "warning",
        "No Celery worker answered within {timeout:g} s through {broker}: retraining and precomputation wait.",
        "Start a worker with the same settings: `celery -A <project> worker` (README, \"Operations\").",
    ),
    "doctor.OK008": ("ok", "A worker read from the cache '{alias}' what this process wrote: the cache is shared.", ""),
    "doctor.E006": (
        "error",
        "A worker read {read!r} from the cache '{alias}' where this process wrote {wrote!r}: workers and web "
        "processes don't share this cache.",
        "Give web processes and workers the same CACHES['{alias}'] (LOCATION, KEY_PREFIX and VERSION).",
    ),
    "doctor.W009": (
        "warning",
        "The shared cache could not be verified: {detail}",
        "Make sure a worker consumes the default queue and CELERY_RESULT_BACKEND is set, then run the doctor again.",
    ),
}


@dataclass(frozen=True)
class Finding:
    level: str  # one of LEVELS
    id: str
    message: str
    hint: str = ""

    def as_dict(self):
        return asdict(self)


def finding(finding_id, **detail):
    level, message, hint = FINDINGS[finding_id]
    return Finding(level, finding_id, message.format(**detail), hint.format(**detail))


def examine(sample=50, days=7, timeout=2.0):
    """Every finding about this store, the plugin's own system checks first."""
    examinations = [
        ("system checks", plugin_checks),
        ("products", lambda: products(sample)),
        ("events", lambda: recent_events(days)),
        ("models", active_models),
        ("cache", lambda: cache_in_use(timeout)),
        ("workers", lambda: workers(timeout)),
    ]
    found = []
    for name, examination in examinations:
        try:
            for item in examination():
                found.append(item)
        except Exception as exc:
            logger.exception("The doctor's examination of %s failed", name)
            found.append(finding("doctor.E001", name=name, detail=_describe(exc)))
    return found


def plugin_checks():
    """The plugin's system checks, as `manage.py check` reports them."""
    messages = [m for m in checks.run_checks() if (m.id or "").startswith("personalization.")]
    for message in messages:
        level = "error" if message.is_serious() else "warning" if message.level >= checks.WARNING else "info"
        yield Finding(level, message.id, message.msg, message.hint or "")
    if not messages:
        yield finding("doctor.OK001")


def products(sample):
    """Up to `sample` products read through the adapter, and the attributes none of them has."""
    name = settings.user_settings.get("ADAPTER", DEFAULTS["ADAPTER"])
    try:
        adapter = get_adapter()
        name = type(adapter).__name__
        catalog = adapter.catalog()
        try:
            read = list(itertools.islice(catalog, sample))
        finally:
            getattr(catalog, "close", lambda: None)()  # a generator's open database cursor
    except Exception as exc:
        yield finding("doctor.E002", adapter=name, detail=_describe(exc))
        return
    if not read:
        yield finding("doctor.W001", adapter=name)
        return
    yield finding("doctor.OK002", count=len(read), adapter=name)
    if all(p.price is None for p in read):
        yield finding("doctor.W002", count=len(read))
    if all(p.stock is None for p in read):
        yield finding("doctor.W003", count=len(read))
    if not any(p.category for p in read):
        yield finding("doctor.W004", count=len(read))
    inactive = sum(not p.active for p in read)
    sold_out = sum(p.stock is not None and p.stock <= 0 for p in read)
    if inactive or sold_out:
        yield finding("doctor.I001", count=len(read), inactive=inactive, sold_out=sold_out)


def recent_events(days):
    """Whether the store records events, and purchases from its live order signal, lately."""
    since = timezone.now() - timedelta(days=days)
    recent = Event.objects.filter(created_at__gte=since)
    count = recent.count()
    if count:
        yield finding("doctor.OK003", count=count, days=days)
    else:
        latest = Event.objects.order_by("-created_at").values_list("created_at", flat=True).first()
        latest = f"{timezone.localtime(latest):%Y-%m-%d %H:%M}" if latest else "none ever"
        yield finding("doctor.W005", days=days, latest=latest)
    purchases = recent.filter(kind=EventKind.PURCHASE, source=EventSource.LIVE).count()
    if purchases:
        yield finding("doctor.OK004", count=purchases, days=days)
    else:
        yield finding("doctor.W006", days=days)


def active_models():
    """One finding per model kind: its active version, or the lack of one."""
    for kind in ModelKind:
        version = registry.active(kind)
        if version is not None:
            yield finding("doctor.OK005", kind=kind.value, number=version.number)
        else:
            run = TrainingRun.objects.filter(kind=kind).order_by("-started_at").first()
            last = "none" if run is None else run.status
            if run is not None and run.message:
                last = f"{run.get_status_display()}, {run.message}"
            trained = ModelVersion.objects.filter(kind=kind).count()
            yield finding("doctor.W007", kind=kind.value, trained=trained, last=last)


def cache_in_use(timeout):
    """The default cache stores and reads, and is shared when tasks run in other processes."""
    cache = caches[DEFAULT_CACHE_ALIAS]
    backend = type(cache).__name__
    key = f"personalization:doctor:{uuid.uuid4().hex}"
    try:
        _within(timeout, cache.set, key, "probe", 30)
        _within(timeout, cache.get, key)
        _within(timeout, cache.delete, key)
    except Exception as exc:
        yield finding("doctor.E003", alias=DEFAULT_CACHE_ALIAS, backend=backend, detail=_describe(exc))
        return
    yield finding("doctor.OK006", alias=DEFAULT_CACHE_ALIAS, backend=backend)
    if _per_process_cache() and not _tasks_run_eagerly():
        yield finding("doctor.E004", alias=DEFAULT_CACHE_ALIAS, backend=backend)


def workers(timeout):
    """The Celery workers answer a ping through the broker; then one reads what this process cached."""
    if _tasks_run_eagerly():
        yield finding("doctor.I002")
        return
    with current_app.connection_for_write(**_bounded_connection(timeout)) as connection:
        broker = maybe_sanitize_url(connection.as_uri(include_password=True))
        try:
            _within(timeout, connection.ensure_connection, max_retries=0)
        except Exception as exc:
            yield finding("doctor.E005", broker=broker, detail=_describe(exc))
            return
        replies = current_app.control.ping(timeout=timeout, connection=connection)
    names = sorted(name for reply in replies or [] for name in reply)
    if not names:
        yield finding("doctor.W008", timeout=timeout, broker=broker)
        return
    yield finding("doctor.OK007", count=len(names), workers=", ".join(names))
    if not _per_process_cache():  # a per-process cache is reported by cache_in_use()
        yield from cache_round_trip(timeout)


def cache_round_trip(timeout):
    """A worker reads back a nonce this process wrote to the default cache."""
    cache = caches[DEFAULT_CACHE_ALIAS]
    key, nonce = f"personalization:doctor:{uuid.uuid4().hex}", uuid.uuid4().hex
    _within(timeout, cache.set, key, nonce, 60)
    try:
        result = current_app.send_task(PROBE_TASK, args=[key], expires=60)
        try:
            read = result.get(timeout=timeout)
        except Exception as exc:
            yield finding("doctor.W009", detail=f"{PROBE_TASK} gave no answer within {timeout:g} s: {_describe(exc)}")
            return
    finally:
        _within(timeout, cache.delete, key)
    if read == nonce:
        yield finding("doctor.OK008", alias=DEFAULT_CACHE_ALIAS)
    else:
        yield finding("doctor.E006", alias=DEFAULT_CACHE_ALIAS, read=read, wrote=nonce)


def _tasks_run_eagerly():
    return bool(current_app.conf.task_always_eager)


def _per_process_cache():
    backend = django_settings.CACHES[DEFAULT_CACHE_ALIAS]["BACKEND"]
    return backend.rsplit(".", 1)[-1] in PER_PROCESS_CACHES


def _bounded_connection(timeout):
    """Connection options under which connecting to the broker gives up after `timeout` seconds."""
    options = {"connect_timeout": timeout}
    if str(current_app.conf.broker_url or "").startswith(("redis://", "rediss://")):
        options["transport_options"] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    return options


def _within(seconds, call, *args, **kwargs):
    """call(*args, **kwargs), or TimeoutError when it has not returned within `seconds` (a server that
    never answers); the call is left to finish in a daemon thread."""
    outcome = queue.Queue(maxsize=1)

    def run():
        try:
            outcome.put((True, call(*args, **kwargs)))
        except BaseException as exc:
            outcome.put((False, exc))

    threading.Thread(target=run, name="personalization-doctor", daemon=True).start()
    try:
        ok, value = outcome.get(timeout=seconds)
    except queue.Empty:
        raise TimeoutError(f"no answer within {seconds:g} s") from None
    if not ok:
        raise value
    return value


def _describe(exc):
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
