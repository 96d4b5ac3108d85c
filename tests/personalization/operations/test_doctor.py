"""`manage.py personalization_doctor`: what works and what doesn't in a store, each finding with its fix;
exit status 1 when there is an error."""
import json
import socket
import time
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from celery import current_app
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from personalization import registry
from personalization.adapters import ProductInfo, StoreAdapter
from personalization.models import Event, EventKind, EventSource, ModelKind
from personalization.operations import doctor
from tests.factories import ProductFactory
from tests.personalization.learning import test_worker

# A real Celery worker process (tests/personalization/learning/test_worker.py): skipped without Redis and PostgreSQL.
services, worker = test_worker.services, test_worker.worker

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]

HERE = "tests.personalization.operations.test_doctor"


@pytest.fixture
def eager(celery_eager):
    """Tasks run in this process: the doctor has no worker to ask and the per-process cache is fine."""


def config(settings, **changes):
    return {**settings.PERSONALIZATION, **changes}


def ids(findings):
    return [f.id for f in findings]


def the(finding_id, findings):
    [found] = [f for f in findings if f.id == finding_id]
    return found


def doctor_output(**options):
    """The command's text output and its exit status."""
    out = StringIO()
    try:
        call_command("personalization_doctor", stdout=out, **options)
    except SystemExit as exit:
        return out.getvalue(), exit.code
    return out.getvalue(), 0


def live_purchase(product, **fields):
    return Event.objects.create(kind=EventKind.PURCHASE, user_id="1", product_id=str(product.pk), **fields)


# The whole examination ----------------------------------------------------------------------------


def test_a_good_store_has_no_error_and_the_doctor_exits_0(trained, eager):
    live_purchase(trained.product("Milk"))

    output, status = doctor_output()

    assert status == 0, output
    findings = doctor.examine()
    assert [f for f in findings if f.level == "error"] == []
    working = {"doctor.OK001", "doctor.OK002", "doctor.OK003", "doctor.OK004", "doctor.OK006", "doctor.I002"}
    assert working <= set(ids(findings))
    assert "0 error(s)" in output and "doctor.OK004" in output


def test_a_wrong_field_path_is_an_error_with_the_checks_fix_and_exit_status_1(settings, eager):
    ProductFactory()
    fields = {**settings.PERSONALIZATION["PRODUCT_FIELDS"], "price": "cost"}

    with override_settings(PERSONALIZATION=config(settings, PRODUCT_FIELDS=fields)):
        output, status = doctor_output()
        findings = doctor.examine()

    assert status == 1
    check = findings[0]  # the plugin's own checks come first
    assert (check.level, check.id) == ("error", "personalization.E003")
    assert "'cost'" in check.message and check.hint
    assert f"personalization.E003: {check.message}" in output and f"fix: {check.hint}" in output
    assert the("doctor.E002", findings).level == "error"  # and the products cannot be read
    assert "Traceback" not in output
    assert output.rstrip().splitlines()[-1].startswith("2 error(s)")


def test_json_output_lists_every_finding_for_tools(settings, eager):
    output, status = doctor_output(format="json")

    listed = json.loads(output)
    assert status == 0
    assert [item["id"] for item in listed] == ids(doctor.examine())
    assert set(listed[0]) == {"level", "id", "message", "hint"}


def test_a_sample_of_no_product_is_refused():
    with pytest.raises(CommandError, match="--sample"):
        call_command("personalization_doctor", sample=0)


def test_an_examination_that_fails_unexpectedly_is_an_error_naming_it_and_the_others_still_run(monkeypatch, eager):
    def broken(kind):
        raise RuntimeError("the registry is on fire")

    monkeypatch.setattr(registry, "active", broken)

    findings = doctor.examine()

    failed = the("doctor.E001", findings)
    assert "models" in failed.message and "RuntimeError: the registry is on fire" in failed.message
    assert "doctor.OK006" in ids(findings)  # the cache was examined after it


# Products -----------------------------------------------------------------------------------------


class SampleAdapter(StoreAdapter):
    """A store whose catalog() is `SampleAdapter.products_read` (a list, or an exception to raise)."""

    products_read = []

    def catalog(self):
        if isinstance(self.products_read, Exception):
            raise self.products_read
        yield from self.products_read


def product(n, **fields):
    values = {"id": str(n), "title": f"P{n}", "category": "Fruit", "price": Decimal("2.50"), "stock": 5, "active": True}
    return ProductInfo(**{**values, "url": "", **fields})


@pytest.fixture
def sample_store(settings, monkeypatch):
    settings.PERSONALIZATION = config(settings, ADAPTER=f"{HERE}.SampleAdapter")

    def read(products):
        monkeypatch.setattr(SampleAdapter, "products_read", products)
        return list(doctor.products(sample=50))

    return read


def test_a_readable_catalog_is_reported_with_the_sample_size(sample_store):
    findings = sample_store([product(n) for n in range(80)])

    assert ids(findings) == ["doctor.OK002"]
    assert findings[0].message == "50 product(s) read through SampleAdapter."


def test_a_catalog_that_raises_is_an_error_with_the_exception_text(sample_store):
    [found] = sample_store(RuntimeError("no such table: shop_product"))

    assert (found.level, found.id) == ("error", "doctor.E002")
    assert "RuntimeError: no such table: shop_product" in found.message


def test_an_empty_catalog_is_a_warning(sample_store):
    [found] = sample_store([])

    assert (found.level, found.id) == ("warning", "doctor.W001")


def test_prices_stocks_and_categories_no_product_has_are_warnings_naming_the_setting(sample_store):
    findings = sample_store([product(n, price=None, stock=None, category="") for n in range(3)])

    price, stock, category = (the(i, findings) for i in ("doctor.W002", "doctor.W003", "doctor.W004"))
    assert "PRODUCT_FIELDS']['price']" in price.hint
    assert "PRODUCT_FIELDS']['stock']" in stock.hint and "does not count stock" in stock.message
    assert "PRODUCT_FIELDS']['category']" in category.hint


def test_one_product_with_a_price_stock_and_category_is_enough(sample_store):
    findings = sample_store([product(1, price=None, stock=None, category=""), product(2)])

    assert ids(findings) == ["doctor.OK002"]


def test_inactive_and_sold_out_products_in_the_sample_are_counted(sample_store):
    findings = sample_store([product(1, active=False), product(2, stock=0), product(3, stock=0), product(4)])

    counted = the("doctor.I001", findings)
    assert counted.level == "info"
    assert "1 are inactive and 2 out of stock" in counted.message


# Events and models --------------------------------------------------------------------------------


def test_a_store_without_events_gets_both_warnings():
    findings = list(doctor.recent_events(days=7))

    assert ids(findings) == ["doctor.W005", "doctor.W006"]
    assert "last 7 days" in findings[0].message and "none ever" in findings[0].message
    assert "ORDER_PLACED_SIGNAL" in findings[1].hint and "ORDER_LINE_MODEL" in findings[1].hint


def test_events_older_than_the_days_asked_count_as_none_and_the_latest_is_named():
    old = timezone.now() - timedelta(days=30)
    live_purchase(ProductFactory(), created_at=old)

    findings = list(doctor.recent_events(days=7))

    assert ids(findings) == ["doctor.W005", "doctor.W006"]
    assert f"{old:%Y-%m-%d}" in findings[0].message
    assert ids(doctor.recent_events(days=60)) == ["doctor.OK003", "doctor.OK004"]


def test_only_purchases_from_the_live_store_show_the_order_signal_works():
    product = ProductFactory()
    live_purchase(product, source=EventSource.DEMO)
    Event.objects.create(kind=EventKind.CART_ADD, user_id="1", product_id=str(product.pk))

    assert ids(doctor.recent_events(days=7)) == ["doctor.OK003", "doctor.W006"]


def test_each_model_kind_without_an_active_version_is_a_warning_with_the_training_command(trained):
    findings = list(doctor.active_models())

    assert [(f.id, f.level) for f in findings] == [
        ("doctor.OK005", "ok"),  # next_basket
        ("doctor.OK005", "ok"),  # autoencoder
        ("doctor.W007", "warning"),  # propensity
    ]
    assert ModelKind.PROPENSITY.value in findings[2].message
    assert "manage.py personalization_train --model all" in findings[2].hint


# Cache and workers --------------------------------------------------------------------------------

LOCAL = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def test_a_per_process_cache_while_tasks_run_in_workers_is_an_error(settings):
    settings.CACHES = LOCAL
    settings.CELERY_TASK_ALWAYS_EAGER = False

    findings = list(doctor.cache_in_use(timeout=1))

    found = the("doctor.E004", findings)
    assert found.level == "error"
    assert "workers and web processes don't share this cache" in found.message and "Redis" in found.hint


def test_a_per_process_cache_is_fine_when_tasks_run_in_the_web_process(settings, eager):
    settings.CACHES = LOCAL

    assert ids(doctor.cache_in_use(timeout=1)) == ["doctor.OK006"]


@pytest.fixture
def closed_port():
    """A port on this host that nothing listens on once the socket that found it is closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_cache_that_cannot_be_reached_is_an_error(settings, closed_port):
    redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{closed_port}/0"}
    settings.CACHES = {"default": redis}

    [found] = doctor.cache_in_use(timeout=1)

    assert (found.level, found.id) == ("error", "doctor.E003")
    assert "RedisCache" in found.message and "LOCATION" in found.hint


def test_with_eager_tasks_no_worker_is_asked(eager, monkeypatch):
    monkeypatch.setattr(doctor.current_app.control, "ping", lambda **kw: pytest.fail("a worker was pinged"))

    assert ids(doctor.workers(timeout=1)) == ["doctor.I002"]


def test_a_broker_that_is_down_is_an_error_naming_it_without_its_password(settings, broker_down, monkeypatch):
    with_password = broker_down.replace("redis://", "redis://:s3cret@")
    settings.CELERY_BROKER_URL = with_password
    monkeypatch.setenv("CELERY_BROKER_URL", with_password)

    [found] = doctor.workers(timeout=1)

    assert (found.level, found.id) == ("error", "doctor.E005")
    assert broker_down.replace("redis://", "redis://:**@") in found.message
    assert "s3cret" not in found.message and "CELERY_BROKER_URL" in found.hint


def _first_answer(worker):
    """Pings until the worker that is starting answers (its start takes seconds); each ping waits 1 s."""
    deadline = time.monotonic() + test_worker.TIMEOUT
    while time.monotonic() < deadline:
        if current_app.control.ping(timeout=1):
            return
        assert worker.process.poll() is None, f"the worker exited:\n{worker.log()}"
    raise AssertionError(f"no worker answered within {test_worker.TIMEOUT}s:\n{worker.log()}")


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_answers_and_reads_what_this_process_cached(worker):
    _first_answer(worker)

    findings = list(doctor.workers(timeout=30))

    assert ids(findings) == ["doctor.OK007", "doctor.OK008"], (findings, worker.log())


def test_a_model_without_an_active_version_names_why_its_last_training_failed(db):
    from personalization.learning import training

    training.train(kinds=[ModelKind.PROPENSITY])  # no purchases at all

    [finding] = [f for f in doctor.active_models() if ModelKind.PROPENSITY.value in f.message]
    assert "not enough data: there are no purchases to learn from yet" in finding.message
