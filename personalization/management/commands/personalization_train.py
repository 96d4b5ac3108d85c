from django.core.management.base import BaseCommand, CommandError

from personalization import registry
from personalization.learning import training
from personalization.models import ModelKind


class Command(BaseCommand):
    help = (
        "Trains models on the store's purchases and judges each on held-out last baskets: for the next basket, "
        "the CNN, TIFU-KNN and personal frequency, and the best of them is published. A new version is "
        "activated only when it also beats the active version (and the baseline, for the other models); then "
        "the recommendations of recently active shoppers are precomputed on the Celery workers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", choices=[*ModelKind.values, "all"], default="all")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
        parser.add_argument(
            "--if-no-active", action="store_true", help="train only the models that have no active version yet (first set-up)"
        )

    def handle(self, *args, model, device, if_no_active=False, **options):
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise CommandError("--device cuda: no CUDA device is available here; use --device cpu or auto")
        kinds = list(ModelKind.values) if model == "all" else [model]
        if if_no_active:
            kinds = [kind for kind in kinds if registry.active(kind) is None]
            if not kinds:
                self.stdout.write("Every model already has an active version; nothing to train.")
                return
        runs = training.train(kinds, device, triggered_by="command", progress=self.stdout.write)
        failed = False
        for run in runs:
            style = {"promoted": self.style.SUCCESS, "failed": self.style.ERROR}.get(run.status, self.style.WARNING)
            seconds = run.duration.total_seconds() if run.duration else 0
            self.stdout.write(style(f"{run.get_kind_display()}: {run.get_status_display()} in {seconds:.0f}s on {run.device} - {run.message}"))
            failed |= run.status == "failed"
        if failed:
            raise CommandError("some models were not trained; see the messages above")
