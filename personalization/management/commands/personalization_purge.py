from django.core.management.base import BaseCommand

from personalization.capture import privacy
from personalization.conf import settings


class Command(BaseCommand):
    help = "Deletes events older than PERSONALIZATION['RETENTION_DAYS']."

    def handle(self, *args, **options):
        deleted = privacy.purge_expired_events()
        days = settings.RETENTION_DAYS
        if days is None:
            self.stdout.write("RETENTION_DAYS is None: events are kept; nothing deleted.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} event(s) older than {days} days."))
