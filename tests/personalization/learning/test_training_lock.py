"""One training of a model at a time: a second run is skipped while the first is alive; a run whose
worker died is marked "worker lost" and the next run starts; a run presumed lost publishes nothing."""
import socket
import subprocess
import sys
from datetime import timedelta

import pandas as pd
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from personalization import registry
from personalization.learning import fitting, training
from personalization.models import ModelKind, ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db

NO_PURCHASES = training.TrainingData(pd.DataFrame())


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def running(worker, heartbeat_age=timedelta(0), kind=ModelKind.NEXT_BASKET):
    beat = timezone.now() - heartbeat_age
    return TrainingRun.objects.create(kind=kind, worker=worker, started_at=beat, heartbeat_at=beat)


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_database_holds_at_most_one_running_run_of_each_model():
    running("host-a:1")
    running("host-a:2", kind=ModelKind.AUTOENCODER)

    with pytest.raises(IntegrityError), transaction.atomic():
        running("host-b:1")


def test_a_second_run_while_one_is_alive_is_skipped_and_names_the_one_running():
    holder = running("gpu-host-7:4242")

    run = training.train_kind(ModelKind.NEXT_BASKET, NO_PURCHASES)

    assert run.status == "skipped"
    assert f"run {holder.pk} of this model is still running" in run.message and "gpu-host-7:4242" in run.message
    holder.refresh_from_db()
    assert holder.status == "running"


def test_runs_of_other_models_are_not_held_back():
    running("gpu-host-7:4242", kind=ModelKind.AUTOENCODER)

    run = training.train_kind(ModelKind.NEXT_BASKET, NO_PURCHASES)

    assert (run.status, run.message) == ("failed", "not enough data: there are no purchases to learn from yet")


def test_a_run_whose_heartbeat_stopped_is_marked_worker_lost_and_the_next_run_starts():
    silent = running("gpu-host-7:4242", heartbeat_age=timedelta(seconds=training.LEASE_SECONDS + 1))

    run = training.train_kind(ModelKind.NEXT_BASKET, NO_PURCHASES)

    silent.refresh_from_db()
    assert silent.status == "failed" and silent.message.startswith("worker lost: no heartbeat since")
    assert silent.finished_at is not None
    assert run.status == "failed" and "not enough data" in run.message


def test_a_run_whose_process_is_gone_on_this_host_is_marked_worker_lost_at_once():
    killed = running(f"{socket.gethostname()}:{dead_pid()}")

    run = training.train_kind(ModelKind.NEXT_BASKET, NO_PURCHASES)

    killed.refresh_from_db()
    assert killed.status == "failed" and "is gone" in killed.message
    assert run.status != "skipped"


def test_a_run_this_process_no_longer_runs_is_lost_so_a_retry_here_can_start():
    left_running = running(training.this_worker())  # e.g. its ending could not be saved: the database was down

    training.train_kind(ModelKind.NEXT_BASKET, NO_PURCHASES)

    left_running.refresh_from_db()
    assert left_running.status == "failed" and "this process no longer runs it" in left_running.message


def test_a_run_presumed_lost_while_it_trained_publishes_nothing(monkeypatch):
    active_before = registry.activate(registry.publish(ModelKind.NEXT_BASKET, b"the active model"))

    def trained_while_declared_lost(data, device, progress):
        TrainingRun.objects.filter(status="running").update(status="failed", message="worker lost: no heartbeat")
        return fitting.Outcome(b"new", "next_basket_cnn", {"ndcg@10": 0.9}, "ndcg@10")

    monkeypatch.setitem(fitting.TRAINERS, ModelKind.NEXT_BASKET, trained_while_declared_lost)

    run = training.train_kind(ModelKind.NEXT_BASKET, training.TrainingData(pd.DataFrame({"user_id": ["1"]})))

    assert run.status == "failed" and "presumed lost" in run.message
    assert list(ModelVersion.objects.all()) == [active_before]
    assert registry.active(ModelKind.NEXT_BASKET) == active_before


@pytest.mark.django_db(transaction=True)  # the heartbeat is written on the thread's own connection
def test_a_running_training_writes_its_heartbeat(monkeypatch):
    monkeypatch.setattr(training, "HEARTBEAT_SECONDS", 0.01)
    beats = []

    def slow(data, device, progress):
        run = TrainingRun.objects.get(status="running")
        first = run.heartbeat_at
        for _ in range(500):
            run.refresh_from_db()
            if run.heartbeat_at != first:
                beats.append(run.heartbeat_at)
                break
            training.time.sleep(0.01)
        raise training.NotEnoughData("stopped by the test")

    monkeypatch.setitem(fitting.TRAINERS, ModelKind.NEXT_BASKET, slow)

    training.train_kind(ModelKind.NEXT_BASKET, training.TrainingData(pd.DataFrame({"user_id": ["1"]})))

    assert beats


def test_the_periodic_sweep_marks_a_silent_run_lost_without_waiting_for_the_next_training():
    from personalization import tasks

    silent = running("elsewhere:1", heartbeat_age=timedelta(seconds=training.LEASE_SECONDS + 60))
    alive = running("elsewhere:2", kind=ModelKind.AUTOENCODER)

    assert tasks.sweep_lost_training_runs.apply().get() == [silent.pk]

    silent.refresh_from_db()
    alive.refresh_from_db()
    assert (silent.status, alive.status) == (TrainingRun.Status.FAILED, TrainingRun.Status.RUNNING)
    assert silent.message.startswith("worker lost: no heartbeat since")
