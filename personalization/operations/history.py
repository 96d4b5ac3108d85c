"""Importing a store's past orders from CSV as purchase events, in bounded memory.

One CSV row is one order line. Required columns: user_id, order_id, product_id. Optional:
ordered_at (ISO 8601; without a zone, the project's time zone), order_number (the shopper's
1st, 2nd, ... order: used for the time when ordered_at is absent), quantity (whole number >= 1,
default 1), price (unit price >= 0), category, product_name. Other columns are ignored. A text
value may be as long as its Event field holds (product_name: PRODUCT_NAME_LENGTH) and holds no
NUL byte. Reading the file is history_csv's; line numbers are the file's physical lines.

Rows are validated and written in batches straight to the Event table inside one transaction
(not through `events.bulk_record`, which holds events until commit). Each line gets the dedupe
key "<source>:<order_id>:<product_id>", so importing a file again adds nothing; when an order
lists a product twice, the first row is kept and the later ones count as duplicates. A CSV's
product ids are looked up in the store's catalog: rows of unknown products (no longer sold, say)
are imported and counted, or refused with `known_products_only`.
"""
import re
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from personalization.adapters import get_adapter
from personalization.models import Event, EventKind, EventSource, OptOut
from personalization.operations.history_csv import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    InvalidRow,
    UnreadableFile,
    column_positions,
    csv_chunks,
)

CHUNK_SIZE = 20_000
# Events per dedupe lookup and insert, and product ids per catalog lookup: the keys stay under
# SQLite's 999 variables.
WRITE_BATCH = 900
# Examples of skipped rows kept in the result.
EXAMPLES_KEPT = 5
# With order_number but no ordered_at, order n is placed at midnight UTC of the import day minus
# this many days plus n days: the order is kept and the history stays inside the retention window.
ORDER_NUMBER_SPAN_DAYS = 180
# product_name is kept in Event.data, which has no limit of its own: a product title's length.
PRODUCT_NAME_LENGTH = 255

_TEXT_LENGTHS = {
    **{name: Event._meta.get_field(name).max_length for name in ("user_id", "order_id", "product_id", "category")},
    "product_name": PRODUCT_NAME_LENGTH,
}
_MAX_QUANTITY = 2**31 - 1
_MAX_PRICE = Decimal("1e10")
_CENT = Decimal("0.01")
_WHOLE_NUMBER = re.compile(r"\+?[0-9]+")

__all__ = [
    "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "ImportResult", "InvalidRow", "UnreadableFile",
    "import_frame", "import_history", "stored_time", "write_events",
]  # fmt: skip


@dataclass
class ImportResult:
    """What an import did. rows_read = imported + duplicates_ignored + opted_out + skipped."""

    rows_read: int = 0
    imported: int = 0
    duplicates_ignored: int = 0
    # Rows of shoppers who opted out of personalization: dropped, not stored.
    opted_out: int = 0
    skipped: int = 0
    # Skipped rows counted by what was wrong, e.g. {"column 'quantity': not a whole number": 3}.
    skip_reasons: dict = field(default_factory=dict)
    # The first few skipped rows (InvalidRow, by line).
    skip_examples: list = field(default_factory=list)
    # Rows (not skipped) naming a product the store's catalog does not have, and those products' ids.
    unknown_product_rows: int = 0
    unknown_products: set = field(default_factory=set)

    def note_skipped(self, errors):
        for error in errors:
            self.skip_reasons[error.kind] = self.skip_reasons.get(error.kind, 0) + 1
        self.skipped += len(errors)
        self.skip_examples = sorted(self.skip_examples + errors[:EXAMPLES_KEPT], key=lambda e: e.line)[:EXAMPLES_KEPT]


def import_history(
    file,
    *,
    skip_invalid=False,
    known_products_only=False,
    chunk_size=CHUNK_SIZE,
    progress=None,
    source=EventSource.IMPORT,
    rewrite=None,
):
    """Imports a CSV of order lines (a path or a binary file object) as purchase events.

    By default the first invalid row raises InvalidRow and nothing is imported; with
    `skip_invalid` the valid rows are imported and the result counts the skipped ones (but bytes
    that are not UTF-8 always stop the import). With `known_products_only` a row naming a product
    the catalog does not have is invalid. A file that cannot be read raises UnreadableFile.
    `progress(rows_read, bytes_read)` is called after each chunk. `rewrite(chunk)`, if given, is
    handed each chunk of rows as read (a frame of the known columns, as text) and returns it with
    values changed before they are checked (the demo maps a file's shoppers to its accounts).
    """
    if isinstance(file, (str, Path)):
        try:
            with open(file, "rb") as handle:
                return import_history(
                    handle,
                    skip_invalid=skip_invalid,
                    known_products_only=known_products_only,
                    chunk_size=chunk_size,
                    progress=progress,
                    source=source,
                    rewrite=rewrite,
                )
        except OSError as exc:
            raise UnreadableFile(f"cannot be read ({exc.strerror or exc})") from exc
    with closing(csv_chunks(file, chunk_size)) as chunks:
        if rewrite is not None:
            chunks = ((rewrite(chunk), lines, errors) for chunk, lines, errors in chunks)
        return _import(
            chunks, skip_invalid, progress, source, lambda: _tell(file),
            look_up_products=True, known_products_only=known_products_only,
        )  # fmt: skip


def import_frame(frame, *, source=EventSource.IMPORT, skip_invalid=False, chunk_size=CHUNK_SIZE, progress=None):
    """Imports order lines from a DataFrame with the CSV's columns, as if written to CSV and read back
    (but for the catalog lookup: the demo data's products are the catalog's).

    Line numbers in errors are the lines that CSV would have (row i is line i + 2).
    """
    return _import(_frame_chunks(frame, chunk_size), skip_invalid, progress, source, lambda: None)


def write_events(events, batch_size=WRITE_BATCH):
    """Stores Event instances in batches, leaving out those whose dedupe_key is already stored
    (or repeated earlier in `events`). Returns (written, duplicates)."""
    written = duplicates = 0
    events = iter(events)
    while batch := list(islice(events, batch_size)):
        keys = [event.dedupe_key for event in batch if event.dedupe_key]
        stored = set(Event.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)) if keys else set()
        fresh = []
        for event in batch:
            key = event.dedupe_key
            if key and key in stored:
                duplicates += 1
                continue
            if key:
                stored.add(key)
            fresh.append(event)
        # ignore_conflicts: a concurrent import of the same lines must not fail this one.
        Event.objects.bulk_create(fresh, ignore_conflicts=True)
        written += len(fresh)
    return written, duplicates


def _tell(handle):
    try:
        return handle.tell()
    except (OSError, ValueError):
        return None


def _frame_chunks(frame, chunk_size):
    positions = column_positions(list(frame.columns))
    for start in range(0, len(frame), chunk_size):
        part = frame.iloc[start : start + chunk_size]
        text = pd.DataFrame(
            {
                column: part.iloc[:, position].astype(str).where(part.iloc[:, position].notna(), "")
                for column, position in positions.items()
            }
        )
        yield text, np.arange(start, start + len(part)) + 2, []


def _unknown_products(product_ids):
    """The ids among `product_ids` the store's catalog does not have: one adapter call per WRITE_BATCH
    ids (an adapter answers for the ids that exist; "p9" where keys are numbers is simply not there)."""
    product_ids, adapter, known = list(dict.fromkeys(product_ids)), get_adapter(), set()
    for start in range(0, len(product_ids), WRITE_BATCH):
        known |= set(adapter.products(product_ids[start : start + WRITE_BATCH]))
    return set(product_ids) - known


# Validating and writing --------------------------------------------------------------------


def _import(chunks, skip_invalid, progress, source, position, *, look_up_products=False, known_products_only=False):
    result = ImportResult()
    started = timezone.now()
    opted_out = {str(pk) for pk in OptOut.objects.filter(user__isnull=False).values_list("user_id", flat=True)}
    with transaction.atomic():
        for chunk, lines, read_errors in chunks:
            rows, errors = _validate(chunk, lines, started)
            if look_up_products:
                unknown = _unknown_products(rows["product_id"])
                of_unknown = rows["product_id"].isin(unknown).to_numpy()
                if known_products_only:
                    refused = rows.loc[of_unknown, ["line", "product_id"]].itertuples(index=False)
                    errors += [_not_in_catalog(line, product_id) for line, product_id in refused]
                    rows = rows[~of_unknown]
                else:
                    result.unknown_products |= unknown
                    result.unknown_product_rows += int(of_unknown.sum())
            errors = sorted(errors + read_errors, key=lambda error: error.line)
            stop = errors if not skip_invalid else [error for error in errors if not error.skippable]
            if stop:
                raise stop[0]
            result.rows_read += len(rows) + len(errors)
            result.note_skipped(errors)
            keep = ~rows["user_id"].isin(opted_out).to_numpy()
            result.opted_out += int((~keep).sum())
            written, duplicates = write_events(_events(rows[keep], source))
            result.imported += written
            result.duplicates_ignored += duplicates
            if progress is not None:
                progress(result.rows_read, position())
    return result


def _not_in_catalog(line, product_id):
    problem = "not a product of the store"
    return InvalidRow(int(line), "product_id", f"{_show(product_id)} is {problem}", problem)


def _validate(chunk, lines, started):
    """(valid rows as a frame of converted values, InvalidRow for each invalid row).

    A row's error is its first bad column; blank lines are passed over.
    """
    chunk = chunk.reset_index(drop=True)
    lines = pd.Series(lines)
    blank = (chunk == "").all(axis=1) if len(chunk.columns) else pd.Series(True, index=chunk.index)
    bad = blank.copy()
    errors = []
    values = {}

    def reject(mask, column, problem, reason):
        mask = mask & ~bad
        if mask.any():
            for row in np.flatnonzero(mask.to_numpy()):
                text = chunk.at[row, column].strip() if column in chunk else ""
                errors.append(InvalidRow(int(lines[row]), column, reason(text), problem))
            bad.loc[mask] = True

    def present(column):
        return chunk[column].str.strip() if column in chunk else pd.Series("", index=chunk.index)

    for column in chunk.columns:
        nul = chunk[column].str.contains("\0", regex=False)
        reject(nul, column, "contains a NUL byte", lambda value: f"{_show(value)} contains a NUL byte")
    for column in REQUIRED_COLUMNS:
        reject(present(column) == "", column, "a value is required", lambda _: "a value is required")
    for column, limit in _TEXT_LENGTHS.items():
        text = values[column] = present(column)
        reject(
            text.str.len() > limit,
            column,
            f"longer than {limit} characters",
            lambda value, limit=limit: f"{_show(value)} is longer than {limit} characters ({len(value):,})",
        )

    for column, parse in (
        ("ordered_at", _parse_time),
        ("order_number", _parse_count),
        ("quantity", _parse_count),
        ("price", _parse_price),
    ):
        text = present(column)
        parsed = {value: (None if value == "" else parse(value)) for value in text.unique()}
        failures = {value: result.problem for value, result in parsed.items() if isinstance(result, _Bad)}
        for problem in set(failures.values()):
            reject(
                text.isin([value for value, why in failures.items() if why == problem]),
                column,
                problem,
                lambda value, problem=problem: f"{_show(value)} {problem}",
            )
        converted = {value: (None if value in failures else result) for value, result in parsed.items()}
        values[column] = pd.Series([converted[value] for value in text], index=text.index, dtype=object)
    values["line"] = lines

    rows = pd.DataFrame(values)[~bad.to_numpy()]
    base = datetime.combine(started.astimezone(dt_timezone.utc).date(), datetime.min.time(), dt_timezone.utc)
    base -= timedelta(days=ORDER_NUMBER_SPAN_DAYS)
    numbers = {n: stored_time(base + timedelta(days=n)) for n in rows["order_number"].dropna().unique()}
    when = [
        ordered_at if ordered_at is not None else numbers[number] if number is not None else started
        for ordered_at, number in zip(rows["ordered_at"].astype(object), rows["order_number"].astype(object))
    ]
    rows = rows.assign(created_at=pd.Series(when, index=rows.index, dtype=object))
    return rows, errors


def _events(rows, source):
    prefix = f"{source}:"
    for user_id, order_id, product_id, quantity, price, category, name, created_at in zip(
        rows["user_id"],
        rows["order_id"],
        rows["product_id"],
        rows["quantity"],
        rows["price"],
        rows["category"],
        rows["product_name"],
        rows["created_at"],
    ):
        yield Event(
            kind=EventKind.PURCHASE,
            user_id=user_id,
            product_id=product_id,
            order_id=order_id,
            quantity=1 if quantity is None else quantity,
            unit_price=price,
            category=category,
            data={"product_name": name} if name else {},
            dedupe_key=f"{prefix}{order_id}:{product_id}",
            source=source,
            created_at=created_at,
        )


class _Bad:
    """A value that failed to parse: `problem` completes "'<value>' ..."."""

    __slots__ = ("problem",)

    def __init__(self, problem):
        self.problem = problem


def _parse_count(value):
    if not _WHOLE_NUMBER.fullmatch(value):
        return _Bad("is not a whole number")
    number = int(value)
    if number < 1:
        return _Bad("must be at least 1")
    if number > _MAX_QUANTITY:
        return _Bad("is too large")
    return number


def _parse_price(value):
    try:
        price = Decimal(value)
    except InvalidOperation:
        return _Bad("is not a number")
    if not price.is_finite():
        return _Bad("is not a number")
    if price < 0:
        return _Bad("is negative")
    if price >= _MAX_PRICE:
        return _Bad("is too large")
    return price.quantize(_CENT)


def _parse_time(value):
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return _Bad("is not an ISO 8601 date and time")
    return stored_time(moment)


def stored_time(moment):
    """A datetime as the database expects it: aware when USE_TZ, naive local time otherwise."""
    zone = timezone.get_default_timezone()
    if django_settings.USE_TZ:
        return timezone.make_aware(moment, zone) if timezone.is_naive(moment) else moment
    return timezone.make_naive(moment, zone) if timezone.is_aware(moment) else moment


def _show(value, limit=40):
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")
