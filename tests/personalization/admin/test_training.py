"""The admin's model screens: versions with their metrics, activate / roll back / retrain now (queued,
never run in the request), the read-only training runs, and the active autoencoder's segments."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from personalization import registry
from personalization.ml import checkpoint
from personalization.ml.baselines import PersonalFrequency
from personalization.models import ModelKind, ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

VERSIONS = reverse("admin:personalization_modelversion_changelist")
RUNS = reverse("admin:personalization_trainingrun_changelist")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_superuser("owner", "owner@example.com", "a-long-pass-phrase")


@pytest.fixture
def staff_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def queued(monkeypatch):
    """What was handed to Celery to send to the broker: [(task name, kwargs)]; nothing runs."""
    from celery import Celery

    sent = []

    def send_task(app, name, args=None, kwargs=None, **options):
        sent.append((name, kwargs))
        return object()

    monkeypatch.setattr(Celery, "send_task", send_task)
    return sent


def version(kind=ModelKind.NEXT_BASKET, score=0.41, baseline=0.38, active_before=None, active=False, **fields):
    metrics = {"ndcg@10": score, "discovery_recall@10": score, "baseline": {"ndcg@10": baseline, "discovery_recall@10": baseline}}
    metrics["active_before"] = None if active_before is None else {"ndcg@10": active_before}
    published = registry.publish(kind, b"weights", metrics={**metrics, **fields.pop("metrics", {})}, **fields)
    return registry.activate(published) if active else published


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def act(client, action, *versions):
    return client.post(VERSIONS, {"action": action, "_selected_action": [v.pk for v in versions]}, follow=True)


def test_the_version_list_shows_the_gate_metric_the_score_and_the_active_version_then(staff_client):
    version(score=0.4123, baseline=0.3871, active_before=0.4011, active=True)

    page = staff_client.get(VERSIONS).content.decode()

    assert "ndcg@10" in page
    assert "0.4123" in page and "0.4011" in page


def test_the_admin_shows_which_algorithm_serves_and_by_how_much_it_won(staff_client):
    won = {"runner_up": "next-basket CNN", "margin": 0.0123, "rivals": {"next_basket_cnn": {"ndcg@10": 0.40}}}
    serving = version(score=0.4123, active=True, algorithm="tifu_knn", metrics=won)
    run = TrainingRun.objects.create(kind=ModelKind.NEXT_BASKET, status="promoted", finished_at=timezone.now())
    ModelVersion.objects.filter(pk=serving.pk).update(training_run=run)
    version(algorithm="next_basket_cnn", metrics={"runner_up": "the active version", "margin": -0.004})

    versions = staff_client.get(VERSIONS).content.decode()
    runs = staff_client.get(RUNS).content.decode()
    detail = staff_client.get(reverse("admin:personalization_trainingrun_change", args=[run.pk])).content.decode()

    assert "TIFU-KNN" in versions and "+0.0123 over next-basket CNN" in versions
    assert "-0.0040 over the active version" in versions
    assert "TIFU-KNN" in runs and "+0.0123 over next-basket CNN" in runs
    assert "TIFU-KNN" in detail
    only_tifu = staff_client.get(VERSIONS, {"algorithm__exact": "tifu_knn"}).content.decode()
    assert "+0.0123" in only_tifu and "-0.0040" not in only_tifu


def test_activating_a_version_makes_it_the_one_serving(staff_client):
    old = version(active=True)
    new = version()

    response = act(staff_client, "activate", new)

    assert registry.active(ModelKind.NEXT_BASKET) == new
    assert f"{new} is now active." in messages_of(response)
    old.refresh_from_db()
    assert not old.is_active


def test_two_versions_of_one_model_cannot_both_be_activated(staff_client):
    first, second = version(), version()

    response = act(staff_client, "activate", first, second)

    assert registry.active(ModelKind.NEXT_BASKET) is None
    assert "Select at most one version of each model to activate." in messages_of(response)


def test_rolling_back_restores_the_version_active_before(staff_client):
    old = version(active=True)
    ModelVersion.objects.filter(pk=old.pk).update(activated_at=timezone.now() - timedelta(days=1))
    new = version(active=True)

    response = act(staff_client, "roll_back", new)

    assert registry.active(ModelKind.NEXT_BASKET) == old
    assert any("rolled back to" in message for message in messages_of(response))


def test_retrain_now_queues_the_task_for_the_selected_models_and_trains_nothing_in_the_request(staff_client, queued):
    selected = version(kind=ModelKind.AUTOENCODER)

    response = act(staff_client, "retrain_now", selected)

    assert queued == [("personalization.tasks.retrain", {"kinds": ["autoencoder"], "triggered_by": "admin:owner"})]
    assert not TrainingRun.objects.exists()
    assert any("is queued" in message for message in messages_of(response))


def test_retrain_all_now_queues_every_model_from_the_list_button(staff_client, queued):
    list_page = staff_client.get(VERSIONS).content.decode()
    retrain_url = reverse("admin:personalization_modelversion_retrain")

    response = staff_client.post(retrain_url, follow=True)

    assert retrain_url in list_page
    assert queued == [("personalization.tasks.retrain", {"kinds": list(ModelKind.values), "triggered_by": "admin:owner"})]
    assert response.redirect_chain[-1][0] == VERSIONS
    assert staff_client.get(retrain_url).status_code == 405


def test_retrain_now_with_the_task_queue_down_says_so(staff_client, broker_down):
    response = staff_client.post(reverse("admin:personalization_modelversion_retrain"), follow=True)

    assert response.status_code == 200
    assert any("could not be queued" in message for message in messages_of(response))
    assert not TrainingRun.objects.exists()


def test_staff_who_may_only_view_models_cannot_retrain_activate_or_roll_back(client, django_user_model, queued):
    viewer = django_user_model.objects.create_user("viewer", password="a-long-pass-phrase", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_modelversion", "view_trainingrun"]))
    client.force_login(viewer)
    candidate = version()

    page = client.get(VERSIONS).content.decode()
    refused = client.post(reverse("admin:personalization_modelversion_retrain"))
    act(client, "activate", candidate)

    assert "Retrain all models now" not in page and "retrain_now" not in page
    assert refused.status_code == 403
    assert queued == []
    assert registry.active(ModelKind.NEXT_BASKET) is None


def test_training_runs_are_listed_with_status_duration_device_and_error_and_cannot_be_edited(staff_client):
    started = timezone.now() - timedelta(seconds=42)
    run = TrainingRun.objects.create(
        kind=ModelKind.NEXT_BASKET,
        status="failed",
        device="cuda",
        started_at=started,
        finished_at=started + timedelta(seconds=42),
        message="CUDA out of memory",
        error="Traceback (most recent call last):\nRuntimeError: CUDA out of memory",
    )

    listing = staff_client.get(RUNS).content.decode()
    detail = staff_client.get(reverse("admin:personalization_trainingrun_change", args=[run.pk])).content.decode()

    assert "failed" in listing and "42.0 s" in listing and "cuda" in listing and "CUDA out of memory" in listing
    assert "RuntimeError: CUDA out of memory" in detail
    assert staff_client.post(reverse("admin:personalization_trainingrun_change", args=[run.pk]), {"status": "promoted"}).status_code == 403
    assert staff_client.get(reverse("admin:personalization_trainingrun_add")).status_code == 403


def test_the_segment_page_lists_the_size_and_top_categories_of_each_segment_of_the_active_autoencoder(staff_client):
    segments = [
        {"segment": 0, "shoppers": 30, "top_categories": [{"category": "Dairy", "share": 0.5, "lift": 2.5}]},
        {"segment": 1, "shoppers": 10, "top_categories": [{"category": "Bakery", "share": 0.25, "lift": 1.5}]},
    ]
    artifact = checkpoint.save(PersonalFrequency(), extra={"segments": segments})
    registry.activate(registry.publish(ModelKind.AUTOENCODER, artifact))

    page = staff_client.get(reverse("admin:personalization_modelversion_segments")).content.decode()

    assert "Dairy (50%, ×2.5)" in page and "Bakery (25%, ×1.5)" in page
    assert "<td>30</td>" in page and "<td>75%</td>" in page


def test_the_segment_page_says_when_there_is_no_active_autoencoder(staff_client):
    page = staff_client.get(reverse("admin:personalization_modelversion_segments")).content.decode()

    assert "There is no active shopper autoencoder yet" in page


def test_shoppers_cannot_reach_the_model_screens(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("shopper", password="a-long-pass-phrase"))

    assert client.get(VERSIONS).status_code == 302
    assert client.post(reverse("admin:personalization_modelversion_retrain")).status_code == 302
