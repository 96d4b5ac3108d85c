import time
from pathlib import Path

import torch
from django.core.management.base import BaseCommand, CommandError

from personalization.learning import evaluation as evaluate


class Command(BaseCommand):
    help = (
        "Evaluates every next-basket model and baseline leave-last-basket-out: for each shopper with at "
        "least 3 baskets the last one is the target; parameters are chosen on the one before. Each model's "
        "difference to TIFU-KNN comes with a 95% paired bootstrap interval over shoppers. Reads the "
        "import CSV format (no database needed) or, with --from-db, the store's purchases."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", help="order lines: user_id, order_id, product_id, order_number or ordered_at")
        source.add_argument("--from-db", action="store_true", help="evaluate on the store's purchase events")
        parser.add_argument("--k", type=int, nargs="+", default=[10, 20], help="cut-offs (default: 10 20)")
        parser.add_argument("--models", nargs="+", choices=evaluate.MODEL_NAMES, default=list(evaluate.MODEL_NAMES))
        parser.add_argument("--json", dest="json_out", help="write the results table as JSON here")
        parser.add_argument("--predictions", help="write one JSON line per shopper: the served model's 20 best items")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--threads",
            type=int,
            help="torch CPU threads (default: torch's choice; 1 is much faster on a machine other work keeps busy)",
        )
        parser.add_argument(
            "--resamples", type=int, default=2000, help="bootstrap resamplings of the shoppers (default: 2000)"
        )

    def handle(
        self,
        *args,
        csv=None,
        from_db=False,
        k,
        models,
        json_out=None,
        predictions=None,
        seed=0,
        resamples=2000,
        threads=None,
        **options,
    ):
        if any(value <= 0 for value in k):
            raise CommandError(f"--k takes positive whole numbers, got {k}")
        if resamples <= 0:
            raise CommandError(f"--resamples takes a positive whole number, got {resamples}")
        if threads is not None:
            if threads <= 0:
                raise CommandError(f"--threads takes a positive whole number, got {threads}")
            torch.set_num_threads(threads)
        started = time.perf_counter()
        try:
            frame = evaluate.orders_from_csv(csv) if csv else evaluate.store_orders()
        except evaluate.UnreadableOrders as exc:
            raise CommandError(str(exc)) from None

        def progress(name, i, n):
            self.stderr.write(f"[{i + 1}/{n}] {name} ... ({time.perf_counter() - started:.0f}s)")

        try:
            results = evaluate.evaluate(frame, ks=k, models=models, seed=seed, progress=progress, resamples=resamples)
        except ValueError as exc:
            raise CommandError(f"{csv or 'the store'}: {exc}") from exc
        attrs = results.attrs
        self.stdout.write(
            f"{attrs['evaluated_shoppers']} shoppers evaluated (of {attrs['shoppers']}), {attrs['products']} products, "
            f"in {time.perf_counter() - started:.0f}s\n"
        )
        self.stdout.write(evaluate.as_table(results))
        if f"recall@{min(k)}_vs_{evaluate.REFERENCE_MODEL}" in results:
            self.stdout.write(
                f"vs {evaluate.REFERENCE_MODEL}: mean difference over the same shoppers [95% interval, paired "
                f"bootstrap over shoppers, {resamples} resamples]; an interval above 0 means better"
            )
        if json_out:
            Path(json_out).write_text(evaluate.as_json(results))
            self.stdout.write(f"Results written to {json_out}")
        if predictions:
            self.write_predictions(frame, predictions, seed)

    def write_predictions(self, frame, path, seed):
        count = evaluate.write_predictions(frame, path, seed=seed)
        self.stdout.write(f"Predictions of {evaluate.SERVED_MODEL} for {count} shoppers written to {path}")
