import logging

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("personalization")


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = _("Personalization")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_save

        from personalization import checks, schedules  # noqa: F401  (registers the checks)
        from personalization.capture import receivers
        from personalization.dashboard import charts
        from personalization.models import OptOut

        post_migrate.connect(schedules.create_schedules, sender=self, dispatch_uid="personalization.schedules")
        post_migrate.connect(charts.create_charts, sender=self, dispatch_uid="personalization.charts")
        post_save.connect(receivers.opt_out_saved, sender=OptOut, dispatch_uid="personalization.opt_out_saved")

        try:
            receivers.connect()
        except ImproperlyConfigured as exc:
            # `manage.py check` reports the same problem with a hint; the store itself keeps working.
            logger.error("Personalization is not recording events: %s", exc)
