"""The plugin's periodic tasks, as django-celery-beat rows shop owners edit in the admin
(Periodic Tasks). `migrate` creates the ones that are missing and leaves existing ones as they are:
to stop one, untick "Enabled" (a deleted one comes back at the next `migrate`).
"""
import json

from django.apps import apps as global_apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

#: name -> (task, crontab minute, crontab hour, keyword arguments, description)
SCHEDULES = {
    "personalization: retrain the models": (
        "personalization.tasks.retrain",
        "30",
        "3",
        {"triggered_by": "schedule"},
        "Nightly: trains every model on the store's purchases, promotes the versions that beat the active "
        "ones, then precomputes the recommendations of recently active shoppers.",
    ),
    "personalization: purge expired events": (
        "personalization.tasks.purge_expired_events",
        "0",
        "4",
        {},
        "Daily: deletes the events older than PERSONALIZATION['RETENTION_DAYS'].",
    ),
    "personalization: sweep lost trainings": (
        "personalization.tasks.sweep_lost_training_runs",
        "*/5",
        "*",
        {},
        "Every 5 minutes: marks failed the trainings whose worker died or went silent (no heartbeat).",
    ),
    "personalization: expire coupons": (
        "personalization.tasks.expire_coupons",
        "5",
        "*",
        {},
        "Hourly: marks unused coupons past their expiry as expired.",
    ),
    "personalization: abandoned-cart coupons": (
        "personalization.tasks.issue_abandoned_cart_coupons",
        "20",
        "*",
        {},
        "Hourly: issues the coupons of every running abandoned-cart campaign.",
    ),
}


def create_schedules(using=DEFAULT_DB_ALIAS, verbosity=1, **kwargs):
    """post_migrate: creates the missing SCHEDULES rows (when django_celery_beat is installed)."""
    if not global_apps.is_installed("django_celery_beat"):
        return
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if PeriodicTask._meta.db_table not in connections[using].introspection.table_names():
        return  # `migrate personalization` before django_celery_beat is migrated: the next migrate creates them
    for name, (task, minute, hour, task_kwargs, description) in SCHEDULES.items():
        if PeriodicTask.objects.using(using).filter(name=name).exists():
            continue
        crontab_fields = {
            "minute": minute,
            "hour": hour,
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "timezone": settings.TIME_ZONE,
        }
        crontab = CrontabSchedule.objects.using(using).filter(**crontab_fields).first()
        if crontab is None:
            crontab = CrontabSchedule.objects.using(using).create(**crontab_fields)
        PeriodicTask.objects.using(using).create(
            name=name, task=task, crontab=crontab, kwargs=json.dumps(task_kwargs), description=description
        )
        if verbosity >= 2:
            print(f"  Created the periodic task {name!r}")
