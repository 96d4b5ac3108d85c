"""The store's Celery app: `celery -A shop worker -B` runs the plugin's tasks (README, "Operations").

Its settings are Django's, prefixed CELERY_ (CELERY_BROKER_URL, CELERY_RESULT_BACKEND, ...); its tasks
are each installed app's tasks.py, the plugin's personalization/tasks.py among them.
"""
import logging
import os
from pathlib import Path

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_FOLDER_OPTIONS = ("data_folder_in", "data_folder_out", "control_folder", "processed_folder")


@app.on_after_configure.connect
def _make_embedded_broker_folders(sender, **kwargs):
    """The embedded broker (kombu's filesystem transport) and the file result backend need their
    folders before the first message is sent or read."""
    conf = sender.conf
    folders = []
    if str(conf.broker_url).startswith("filesystem://"):
        options = conf.broker_transport_options or {}
        folders += [options[key] for key in _FOLDER_OPTIONS if options.get(key)]
    if str(conf.result_backend).startswith("file://"):
        folders.append(str(conf.result_backend)[len("file://") :])
    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)


@signals.after_setup_logger.connect
def _log_each_record_once(**kwargs):
    """In a worker, the worker's handler prints the plugin's records (with time, process and task);
    the console handler of settings.LOGGING would print each a second time."""
    logging.getLogger("personalization").handlers.clear()
