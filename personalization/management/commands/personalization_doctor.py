import json

from django.core.management.base import BaseCommand, CommandError

from personalization.operations import doctor


class Command(BaseCommand):
    help = (
        "Reads a sample of products through the configured adapter, looks at the recent events, the active "
        "models, the cache and the Celery workers, and says what works and what doesn't, each with its fix. "
        "Exits with status 1 when there is an error."
    )
    requires_system_checks = []  # the doctor reports the plugin's checks itself, with what else it finds

    def add_arguments(self, parser):
        parser.add_argument("--sample", type=int, default=50, help="how many products to read (default 50)")
        parser.add_argument("--days", type=int, default=7, help="what counts as recent, in days (default 7)")
        parser.add_argument(
            "--timeout", type=float, default=2.0, help="seconds to wait for the broker, a worker, the cache (default 2)"
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, sample, days, timeout, format, **options):
        if sample < 1 or days < 1 or timeout <= 0:
            raise CommandError("--sample and --days must be at least 1, --timeout above 0")
        findings = doctor.examine(sample=sample, days=days, timeout=timeout)
        if format == "json":
            self.stdout.write(json.dumps([f.as_dict() for f in findings], indent=2))
        else:
            self.write_text(findings)
        if any(f.level == "error" for f in findings):
            raise SystemExit(1)

    def write_text(self, findings):
        styles = {"ok": self.style.SUCCESS, "info": str, "warning": self.style.WARNING, "error": self.style.ERROR}
        for f in findings:
            self.stdout.write(styles[f.level](f"{f.level:>7}  {f.id}: {f.message}"))
            if f.hint:
                self.stdout.write(f"         fix: {f.hint}")
        counts = {level: sum(f.level == level for f in findings) for level in doctor.LEVELS}
        summary = (
            f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['ok']} ok, {counts['info']} info."
        )
        style = self.style.ERROR if counts["error"] else self.style.WARNING if counts["warning"] else self.style.SUCCESS
        self.stdout.write(style(summary))
