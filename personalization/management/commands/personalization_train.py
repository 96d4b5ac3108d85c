from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from personalization import registry
from personalization.models import ModelKind
from personalization.services import training


class Command(BaseCommand):
    help = (
        "Trains models on the store's purchases, evaluates each on held-out last baskets, publishes a new "
        "version and activates it only when it beats the active version and the personal-frequency baseline."
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
        frame = training.purchase_frame()
        self.stdout.write(f"Training {', '.join(kinds)} on {len(frame)} order lines ...")
        with tqdm(total=len(kinds), unit="model", file=self.stderr) as bar:
            runs = []
            for kind in kinds:
                bar.set_description(kind)
                runs.append(training.train_kind(kind, frame, device, triggered_by="command", progress=bar.write))
                bar.update()
        failed = False
        for run in runs:
            style = {"promoted": self.style.SUCCESS, "failed": self.style.ERROR}.get(run.status, self.style.WARNING)
            seconds = run.duration.total_seconds() if run.duration else 0
            self.stdout.write(style(f"{run.get_kind_display()}: {run.get_status_display()} in {seconds:.0f}s on {run.device} - {run.message}"))
            failed |= run.status == "failed"
        if failed:
            raise CommandError("some models were not trained; see the messages above")
