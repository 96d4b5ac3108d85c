"""Celery tasks, run eagerly: retraining with precomputed recommendations, the maintenance tasks,
retries, the training queue, and a broker that is down."""
import logging
from datetime import timedelta
from unittest import mock

import pytest
from celery.app.task import Task
from django.db import OperationalError, transaction
from django.utils import timezone

from personalization import registry, tasks
from personalization.capture.events import Shopper
from personalization.learning import fitting, training
from personalization.ml import checkpoint
from personalization.ml.train import TrainConfig, train_autoencoder, train_next_basket
from personalization.models import Coupon, Event, ModelKind, ModelVersion, Placement, TrainingRun
from personalization.serving import candidates, precompute, ranking
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory
from tests.personalization.stores import build_store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]


@pytest.fixture
def recent_days(settings):
    """The tiny store's orders are weeks old: count them as recent activity."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PRECOMPUTE_ACTIVE_DAYS": 365}


def quick_trainer(kind, score=0.9, baseline=0.5):
    """A trainer of `kind` that fits one epoch and reports `score` against `baseline` on the gate metric."""
    fit = {ModelKind.NEXT_BASKET: train_next_basket, ModelKind.AUTOENCODER: train_autoencoder}[kind]

    def train(data, device, progress):
        model = fit(data.sequences, train_config=TrainConfig(epochs=1, patience=None, device="cpu", batch_size=32)).model
        metric = fitting.gate_metric(kind)
        artifact = checkpoint.save(model, vocabulary=data.sequences.vocabulary)
        algorithm = {ModelKind.NEXT_BASKET: "next_basket_cnn", ModelKind.AUTOENCODER: "autoencoder"}[kind]
        return fitting.Outcome(artifact, algorithm, {metric: score}, metric, baseline={metric: baseline})

    return train


@pytest.fixture
def quick_training(monkeypatch):
    """Training fits in a moment: the next-basket and autoencoder trainers take one epoch and win the gate."""
    monkeypatch.setitem(fitting.TRAINERS, ModelKind.NEXT_BASKET, quick_trainer(ModelKind.NEXT_BASKET))
    monkeypatch.setitem(fitting.TRAINERS, ModelKind.AUTOENCODER, quick_trainer(ModelKind.AUTOENCODER))


@pytest.fixture
def scoring_calls(monkeypatch):
    """How often candidates were generated (by the models or the event statistics), i.e. not read from the cache."""
    calls = []
    generate = candidates.generate

    def counted(strategy, context):
        calls.append(strategy)
        return generate(strategy, context)

    monkeypatch.setattr(candidates, "generate", counted)
    return calls


KINDS = [ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER]


# Retraining --------------------------------------------------------------------------------------


def test_retrain_trains_each_model_promotes_the_winners_and_returns_the_new_version_ids(celery_eager, quick_training):
    build_store()

    version_ids = tasks.retrain.delay(kinds=KINDS, triggered_by="test").get()

    versions = ModelVersion.objects.filter(pk__in=version_ids)
    assert sorted(versions.values_list("kind", flat=True)) == sorted(KINDS)
    assert all(version.is_active for version in versions)
    assert set(TrainingRun.objects.values_list("status", "triggered_by")) == {("promoted", "test")}


def test_after_a_promotion_the_recommendations_of_recent_shoppers_are_precomputed(
    celery_eager, quick_training, recent_days, scoring_calls
):
    store = build_store()
    tasks.retrain.delay(kinds=KINDS).get()
    scoring_calls.clear()

    for shopper in store.shoppers["dairy"] + store.shoppers["bakery"]:
        for placement in precompute.placements():
            assert ranking.recommend(placement, Shopper(user_id=shopper.pk)).items

    assert scoring_calls == []
    assert {p.slug for p in precompute.placements()} == {"home-for-you", "home-buy-again", "order-confirmation"}


def test_nothing_is_precomputed_when_no_version_was_promoted(celery_eager, monkeypatch, recent_days, scoring_calls):
    build_store()
    monkeypatch.setitem(fitting.TRAINERS, ModelKind.NEXT_BASKET, quick_trainer(ModelKind.NEXT_BASKET, score=0.1))

    [version_id] = tasks.retrain.delay(kinds=[ModelKind.NEXT_BASKET]).get()

    assert not ModelVersion.objects.get(pk=version_id).is_active
    assert scoring_calls == []


def test_retrain_refuses_an_unknown_model_kind(celery_eager):
    with pytest.raises(ValueError, match="unknown model kind"):
        tasks.retrain.delay(kinds=["next_basket", "crystal_ball"]).get()

    assert not TrainingRun.objects.exists()


def test_a_failing_training_shows_in_its_training_run_with_the_error(celery_eager, monkeypatch):
    build_store()

    def broken(data, device, progress):
        raise RuntimeError("the GPU caught fire")

    monkeypatch.setitem(fitting.TRAINERS, ModelKind.NEXT_BASKET, broken)

    assert tasks.retrain.delay(kinds=[ModelKind.NEXT_BASKET]).get() == []

    run = TrainingRun.objects.get()
    assert (run.status, run.message) == ("failed", "the GPU caught fire")
    assert "RuntimeError: the GPU caught fire" in run.error
    assert registry.active(ModelKind.NEXT_BASKET) is None


def test_a_transient_database_error_is_retried(celery_eager, settings, monkeypatch):
    settings.CELERY_TASK_EAGER_PROPAGATES = False  # an eager task retries only when its errors are not raised
    attempts = []

    def flaky(kinds, triggered_by):
        attempts.append(kinds)
        if len(attempts) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return []

    monkeypatch.setattr(training, "train", flaky)

    assert tasks.retrain.delay(kinds=[ModelKind.PROPENSITY]).get() == []
    assert attempts == [[ModelKind.PROPENSITY]] * 2
    assert tasks.retrain.retry_backoff and tasks.retrain.max_retries == 5


@pytest.mark.parametrize(
    "queue_setting, asked, sent_to",
    [("gpu", None, "gpu"), ("gpu", "celery", "celery"), (None, None, None)],
)
def test_training_goes_to_the_training_queue_unless_another_is_named(settings, queue_setting, asked, sent_to):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRAINING_QUEUE": queue_setting}
    options = {"queue": asked} if asked else {}

    with mock.patch.object(Task, "apply_async") as sent:
        tasks.retrain.apply_async(kwargs={"triggered_by": "test"}, **options)
        tasks.purge_expired_events.apply_async(**options)

    assert sent.call_args_list[0].kwargs.get("queue") == sent_to
    assert sent.call_args_list[1].kwargs.get("queue") == asked


@pytest.mark.parametrize("queue_setting", ["gpu", None])
def test_a_retrain_queued_by_name_goes_to_the_training_queue(settings, queue_setting):
    from celery import Celery

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "TRAINING_QUEUE": queue_setting}
    with mock.patch.object(Celery, "send_task") as sent:
        training.queue([ModelKind.AUTOENCODER], triggered_by="test")

    assert sent.call_args.args == ("personalization.tasks.retrain",)
    assert sent.call_args.kwargs["kwargs"] == {"kinds": ["autoencoder"], "triggered_by": "test"}
    assert sent.call_args.kwargs["queue"] == queue_setting
    assert tasks.retrain.name == training.RETRAIN_TASK  # the name queued is the task's


# Precomputation ----------------------------------------------------------------------------------


def test_shards_cover_every_recently_active_shopper_once_whatever_their_keys():
    now = timezone.now()
    for user_id in ["1", "2", "10", "11", "100", "9", "abc"]:
        Event.objects.create(kind="view", product_id="1", user_id=user_id)
    Event.objects.create(kind="view", product_id="1", user_id="12", created_at=now - timedelta(days=30))
    Event.objects.create(kind="view", product_id="1", session_key="anonymous-session")

    shards = precompute.shards(size=3)

    warmed = [user_id for first, last in shards for user_id in precompute.recent_shoppers(first, last)]
    assert sorted(warmed) == sorted(["1", "2", "10", "11", "100", "9", "abc"])
    assert len(shards) == 3


def test_precompute_recommendations_warms_each_shopper_of_its_range(celery_eager, scoring_calls):
    Event.objects.create(kind="view", product_id="1", user_id="7")
    Event.objects.create(kind="view", product_id="1", user_id="8")

    assert tasks.precompute_recommendations.delay("7", "7").get() == 1
    scoring_calls.clear()
    ranking.recommend(Placement.objects.get(slug="home-for-you"), Shopper(user_id="7"))
    assert scoring_calls == []
    ranking.recommend(Placement.objects.get(slug="home-for-you"), Shopper(user_id="8"))
    assert scoring_calls != []


def test_with_precomputing_turned_off_there_are_no_shards(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PRECOMPUTE_ACTIVE_DAYS": 0}
    Event.objects.create(kind="view", product_id="1", user_id="7")

    assert precompute.shards() == []


# Maintenance -------------------------------------------------------------------------------------


def test_purge_expired_events_deletes_events_past_retention(celery_eager, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RETENTION_DAYS": 30}
    Event.objects.create(kind="view", product_id="1", user_id="7", created_at=timezone.now() - timedelta(days=31))
    kept = Event.objects.create(kind="view", product_id="1", user_id="7")

    assert tasks.purge_expired_events.delay().get() == 1
    assert list(Event.objects.all()) == [kept]


def test_expire_coupons_marks_unused_coupons_past_their_expiry(celery_eager):
    old = CouponFactory(expires_at=timezone.now() - timedelta(minutes=1))
    current = CouponFactory(expires_at=timezone.now() + timedelta(days=1))

    assert tasks.expire_coupons.delay().get() == 1
    assert Coupon.objects.get(pk=old.pk).status == "expired"
    assert Coupon.objects.get(pk=current.pk).status == "issued"


def test_issue_abandoned_cart_coupons_reports_the_coupons_of_each_campaign(celery_eager, django_user_model):
    campaign = CouponCampaignFactory(audience="cart_abandonment", abandoned_hours=1)
    shopper = django_user_model.objects.create_user("left-a-cart")
    Event.objects.create(kind="cart_add", product_id="1", user_id=str(shopper.pk), created_at=timezone.now() - timedelta(hours=3))

    assert tasks.issue_abandoned_cart_coupons.delay().get() == {str(campaign.pk): 1}
    assert Coupon.objects.get().user == shopper


# The broker is down ------------------------------------------------------------------------------


def test_with_the_broker_down_queueing_is_logged_and_never_raises(broker_down, caplog):
    with caplog.at_level(logging.ERROR, logger="personalization.tasks"):
        assert tasks.send(tasks.purge_expired_events) is None

    assert "Could not queue personalization.tasks.purge_expired_events" in caplog.text


def test_with_the_broker_down_a_task_queued_on_commit_leaves_the_transaction_alone(
    broker_down, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            Event.objects.create(kind="view", product_id="1", user_id="7")
            tasks.send_on_commit(tasks.retrain, triggered_by="test")

    assert len(callbacks) == 1
    assert Event.objects.count() == 1
    assert "Could not queue personalization.tasks.retrain" in caplog.text


def test_with_the_broker_down_carts_and_checkout_work_and_their_events_are_recorded(
    broker_down, client, django_user_model, make_product, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    shopper = django_user_model.objects.create_user("ada", password="a-long-pass-phrase")
    client.force_login(shopper)
    product = make_product(stock=5)

    with django_capture_on_commit_callbacks(execute=True):
        added = client.post(reverse("cart_add", args=[product.pk]), {"quantity": 2})
    with django_capture_on_commit_callbacks(execute=True):
        ordered = client.post(reverse("checkout"), {"full_name": "Ada Lovelace", "address": "1 Main Street"})

    assert added.status_code == 302 and ordered.status_code == 302
    assert sorted(Event.objects.filter(user_id=str(shopper.pk)).values_list("kind", flat=True)) == ["cart_add", "purchase"]
