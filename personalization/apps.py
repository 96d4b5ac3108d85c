import logging

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("personalization")


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = _("Personalization")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from personalization import checks, receivers  # noqa: F401  (registers the checks)

        try:
            receivers.connect()
        except ImproperlyConfigured as exc:
            # `manage.py check` reports the same problem with a hint; the store itself keeps working.
            logger.error("Personalization is not recording events: %s", exc)
