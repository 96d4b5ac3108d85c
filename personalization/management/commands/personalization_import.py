"""manage.py personalization_import FILE.csv: a store's past orders become purchase events."""
import os

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from personalization.operations import history


class Command(BaseCommand):
    help = (
        "Imports past orders from a UTF-8 CSV file (one order line per row; columns user_id, order_id, "
        "product_id and optionally ordered_at, order_number, quantity, price, category, product_name) "
        "as purchase events. Importing the same file again adds nothing. Rows of products the store's "
        "catalog does not have are imported and counted, unless --known-products-only."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid rows and report the invalid ones (default: the first invalid row stops the import)",
        )
        parser.add_argument(
            "--known-products-only",
            action="store_true",
            help="refuse rows of products the store's catalog does not have (default: import them and count them)",
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=history.CHUNK_SIZE,
            help=f"rows read at a time (default {history.CHUNK_SIZE}); memory use grows with it",
        )

    def handle(self, *args, file, skip_invalid, known_products_only, chunk_size, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1.")
        size = os.path.getsize(file) if os.path.isfile(file) else None
        with tqdm(total=size, unit="B", unit_scale=True, desc="Importing", disable=None) as bar:

            def progress(rows, position):
                if position is not None:
                    bar.update(position - bar.n)
                bar.set_postfix(rows=rows, refresh=False)

            try:
                result = history.import_history(
                    file,
                    skip_invalid=skip_invalid,
                    known_products_only=known_products_only,
                    chunk_size=chunk_size,
                    progress=progress,
                )
            except history.InvalidRow as exc:
                raise CommandError(f"{file}, {exc}") from exc
            except history.UnreadableFile as exc:
                raise CommandError(f"{file}: {exc}") from exc
        self.report(file, result)

    def report(self, file, result):
        self.stdout.write(
            f"{file}: {result.rows_read} rows read, {result.imported} imported, "
            f"{result.duplicates_ignored} already imported, {result.opted_out} of opted-out shoppers left out, "
            f"{result.skipped} skipped, "
            f"{result.unknown_product_rows} rows of {len(result.unknown_products)} unknown products."
        )
        for reason, count in sorted(result.skip_reasons.items(), key=lambda item: -item[1]):
            self.stdout.write(f"  skipped {count}: {reason}")
        if result.skip_examples:
            self.stdout.write("  first skipped rows:")
            for error in result.skip_examples:
                self.stdout.write(f"    {file}, {error}")
        if result.imported:
            self.stdout.write(self.style.SUCCESS(f"Imported {result.imported} purchase events."))
