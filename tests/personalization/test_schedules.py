"""The plugin's periodic tasks exist after `migrate`, as django-celery-beat rows the admin edits."""
import json

import pytest
from django_celery_beat.models import PeriodicTask

from personalization import schedules, tasks

pytestmark = pytest.mark.django_db


def test_migrate_schedules_retraining_nightly_purging_daily_the_coupon_tasks_hourly_and_the_lost_run_sweep():
    rows = {row.task: row for row in PeriodicTask.objects.filter(name__startswith="personalization:")}

    assert set(rows) == {
        "personalization.tasks.retrain",
        "personalization.tasks.purge_expired_events",
        "personalization.tasks.expire_coupons",
        "personalization.tasks.issue_abandoned_cart_coupons",
        "personalization.tasks.sweep_lost_training_runs",
    }
    hours = {task: (row.crontab.minute, row.crontab.hour) for task, row in rows.items()}
    assert hours["personalization.tasks.retrain"] == ("30", "3")
    assert hours["personalization.tasks.purge_expired_events"] == ("0", "4")
    assert hours["personalization.tasks.expire_coupons"][1] == "*"
    assert hours["personalization.tasks.issue_abandoned_cart_coupons"][1] == "*"
    assert hours["personalization.tasks.sweep_lost_training_runs"] == ("*/5", "*")
    assert json.loads(rows["personalization.tasks.retrain"].kwargs) == {"triggered_by": "schedule"}
    assert all(row.enabled for row in rows.values())


def test_every_scheduled_task_exists():
    from celery import current_app

    current_app.loader.import_default_modules()
    assert {task for task, *_ in schedules.SCHEDULES.values()} <= set(current_app.tasks)
    assert tasks.retrain.name in current_app.tasks


def test_migrating_again_keeps_the_shop_owners_changes_and_adds_nothing():
    retrain = PeriodicTask.objects.get(task="personalization.tasks.retrain")
    retrain.enabled = False
    retrain.crontab.hour = "1"
    retrain.crontab.save()
    retrain.save()
    count = PeriodicTask.objects.count()

    schedules.create_schedules()

    retrain.refresh_from_db()
    assert (retrain.enabled, retrain.crontab.hour) == (False, "1")
    assert PeriodicTask.objects.count() == count


def test_a_deleted_schedule_comes_back_at_the_next_migrate():
    PeriodicTask.objects.filter(task="personalization.tasks.expire_coupons").delete()

    schedules.create_schedules()

    assert PeriodicTask.objects.filter(task="personalization.tasks.expire_coupons").count() == 1
