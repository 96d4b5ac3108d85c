from django.core.management.base import BaseCommand, CommandError

from personalization.capture import privacy


class Command(BaseCommand):
    help = "Erases every event recorded about one shopper (a user id or an anonymous session key)."

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="the user's primary key")
        who.add_argument("--session", help="an anonymous shopper's session key")

    def handle(self, *args, user=None, session=None, **options):
        if user is not None and not user.strip():
            raise CommandError("--user needs a user id")
        deleted = privacy.forget(user_id=user, session_key=session or "")
        who = f"user {user}" if user else f"session {session}"
        self.stdout.write(self.style.SUCCESS(f"Erased {deleted} event(s) of {who}."))
