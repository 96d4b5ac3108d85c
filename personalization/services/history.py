"""Importing a store's past orders from CSV as purchase events, in bounded memory.

One CSV row is one order line. Required columns: user_id, order_id, product_id. Optional:
ordered_at (ISO 8601; without a zone, the project's time zone), order_number (the shopper's
1st, 2nd, ... order: used for the time when ordered_at is absent), quantity (whole number >= 1,
default 1), price (unit price >= 0), category, product_name. Other columns are ignored.

Rows are validated and written in batches straight to the Event table inside one transaction
(not through `events.bulk_record`, which holds events until commit). Each line gets the dedupe
key "<source>:<order_id>:<product_id>", so importing a file again adds nothing; when an order
lists a product twice, the first row is kept and the later ones count as duplicates.
Line numbers are the file's physical lines (header = line 1), assuming no field spans lines.
"""
import re
import warnings
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

from personalization.models import Event, EventKind, EventSource, OptOut

REQUIRED_COLUMNS = ("user_id", "order_id", "product_id")
OPTIONAL_COLUMNS = ("ordered_at", "order_number", "quantity", "price", "category", "product_name")
CHUNK_SIZE = 20_000
# Events per dedupe lookup and insert: the lookup's keys stay under SQLite's 999 variables.
WRITE_BATCH = 900
# Examples of skipped rows kept in the result.
EXAMPLES_KEPT = 5
# With order_number but no ordered_at, order n is placed at midnight UTC of the import day minus
# this many days plus n days: the order is kept and the history stays inside the retention window.
ORDER_NUMBER_SPAN_DAYS = 180

_ID_LENGTH = 64
_CATEGORY_LENGTH = Event._meta.get_field("category").max_length
_MAX_QUANTITY = 2**31 - 1
_MAX_PRICE = Decimal("1e10")
_CENT = Decimal("0.01")
_SKIPPED_LINE = re.compile(r"Skipping line (\d+): (.*)")
_WHOLE_NUMBER = re.compile(r"\+?[0-9]+")


class InvalidRow(ValueError):
    """A row (or the header, line 1) that cannot be imported: where, and why.

    `reason` names the value ("'abc' is not a whole number"); `problem` leaves it out, so that
    alike rows are counted together ("not a whole number").
    """

    def __init__(self, line, column, reason, problem=None):
        self.line = line
        self.column = column
        self.reason = reason
        self.problem = problem or reason
        super().__init__(str(self))

    def __str__(self):
        where = f"line {self.line}, column {self.column!r}" if self.column else f"line {self.line}"
        return f"{where}: {self.reason}"

    @property
    def kind(self):
        """The key under which alike skipped rows are counted."""
        return f"column {self.column!r}: {self.problem}" if self.column else self.problem


class UnreadableFile(ValueError):
    """The file is missing, unreadable, or not UTF-8 CSV text."""


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

    def note_skipped(self, errors):
        for error in errors:
            self.skip_reasons[error.kind] = self.skip_reasons.get(error.kind, 0) + 1
        self.skipped += len(errors)
        self.skip_examples = sorted(self.skip_examples + errors[:EXAMPLES_KEPT], key=lambda e: e.line)[:EXAMPLES_KEPT]


def import_history(file, *, skip_invalid=False, chunk_size=CHUNK_SIZE, progress=None, source=EventSource.IMPORT):
    """Imports a CSV of order lines (a path or a binary file object) as purchase events.

    By default the first invalid row raises InvalidRow and nothing is imported; with
    `skip_invalid` the valid rows are imported and the result counts the skipped ones. A file
    that cannot be read as UTF-8 CSV raises UnreadableFile, also importing nothing.
    `progress(rows_read, bytes_read)` is called after each chunk.
    """
    if isinstance(file, (str, Path)):
        try:
            with open(file, "rb") as handle:
                return import_history(
                    handle, skip_invalid=skip_invalid, chunk_size=chunk_size, progress=progress, source=source
                )
        except OSError as exc:
            raise UnreadableFile(f"cannot be read ({exc.strerror or exc})") from exc
    with closing(_csv_chunks(file, chunk_size)) as chunks:
        return _import(chunks, skip_invalid, progress, source, lambda: _tell(file))


def import_frame(frame, *, source=EventSource.IMPORT, skip_invalid=False, chunk_size=CHUNK_SIZE, progress=None):
    """Imports order lines from a DataFrame with the CSV's columns, as if written to CSV and read back.

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


# Reading -----------------------------------------------------------------------------------


def _csv_chunks(handle, chunk_size):
    """Yields (chunk of str columns, physical line of each row, InvalidRow for lines with too many fields)."""
    skipped_lines = []  # (physical line, why) of lines the parser dropped, in order

    def parse(call):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            try:
                return call()
            except UnicodeDecodeError as exc:
                raise UnreadableFile("not UTF-8 text") from exc
            except pd.errors.EmptyDataError as exc:
                raise InvalidRow(1, None, f"the file is empty; the header needs {', '.join(REQUIRED_COLUMNS)}") from exc
            except pd.errors.ParserError as exc:
                raise UnreadableFile(f"not readable as CSV ({str(exc).strip()})") from exc
            finally:
                for warning in caught:
                    found = _SKIPPED_LINE.search(str(warning.message))
                    if found:
                        skipped_lines.append((int(found.group(1)), found.group(2).strip()))
                    else:
                        warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)

    reader = parse(
        lambda: pd.read_csv(
            handle,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            chunksize=chunk_size,
            # Lines with too many fields are reported as warnings and become InvalidRow errors.
            on_bad_lines="warn",
        )
    )
    reported = 0
    columns = []
    with reader:
        while True:
            chunk = parse(lambda: next(reader, None))
            if chunk is None:
                if reported < len(skipped_lines):  # dropped lines after the last row
                    yield pd.DataFrame(columns=columns, dtype=str), np.empty(0, dtype=np.int64), [
                        _too_many_fields(line, why) for line, why in skipped_lines[reported:]
                    ]
                return
            columns = chunk.columns
            # Data row i is on line i + 2, pushed down by every dropped line before it.
            dropped = np.array([line for line, _ in skipped_lines], dtype=np.int64)
            shifted = dropped - np.arange(len(dropped))
            rows = chunk.index.to_numpy(dtype=np.int64) + 2
            lines = rows + np.searchsorted(shifted, rows, side="right")
            last_line = lines[-1] if len(lines) else np.iinfo(np.int64).max
            newly = [_too_many_fields(line, why) for line, why in skipped_lines[reported:] if line < last_line]
            reported += len(newly)
            yield chunk, lines, newly


def _too_many_fields(line, why):
    return InvalidRow(line, None, why, "wrong number of fields")


def _frame_chunks(frame, chunk_size):
    for start in range(0, max(len(frame), 1), chunk_size):
        part = frame.iloc[start : start + chunk_size]
        text = pd.DataFrame(
            {
                column: part[column].astype(str).where(part[column].notna(), "")
                for column in part.columns
            }
        )
        yield text, np.arange(start, start + len(part)) + 2, []


def _tell(handle):
    try:
        return handle.tell()
    except (OSError, ValueError):
        return None


# Validating and writing --------------------------------------------------------------------


def _import(chunks, skip_invalid, progress, source, position):
    result = ImportResult()
    started = timezone.now()
    opted_out = {str(pk) for pk in OptOut.objects.filter(user__isnull=False).values_list("user_id", flat=True)}
    with transaction.atomic():
        columns = None
        for chunk, lines, parse_errors in chunks:
            if columns is None:
                columns = _check_header(chunk)
            chunk = chunk.rename(columns=columns)
            rows, errors = _validate(chunk, lines, started)
            errors = sorted(errors + parse_errors, key=lambda error: error.line)
            if errors and not skip_invalid:
                raise errors[0]
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


def _check_header(chunk):
    """Maps the file's column names to ours (case and spaces aside); raises for a missing one."""
    columns = {name: str(name).strip().lower() for name in chunk.columns}
    found = set()
    for name in columns.values():
        if name in found and name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            raise InvalidRow(1, name, "the header names this column twice", "repeated column")
        found.add(name)
    for required in REQUIRED_COLUMNS:
        if required not in found:
            header = ", ".join(str(name) for name in chunk.columns) or "nothing"
            raise InvalidRow(1, required, f"the header has no such column (it has: {header})", "missing column")
    return columns


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
                text = chunk.at[row, column] if column in chunk else ""
                errors.append(InvalidRow(int(lines[row]), column, reason(text), problem))
            bad.loc[mask] = True

    def present(column):
        return chunk[column].str.strip() if column in chunk else pd.Series("", index=chunk.index)

    for column in REQUIRED_COLUMNS:
        text = present(column)
        reject(text == "", column, "a value is required", lambda _: "a value is required")
        reject(
            text.str.len() > _ID_LENGTH,
            column,
            f"longer than {_ID_LENGTH} characters",
            lambda value: f"{_show(value)} is longer than {_ID_LENGTH} characters",
        )
        values[column] = text

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
                lambda value, problem=problem: f"{_show(value.strip())} {problem}",
            )
        converted = {value: (None if value in failures else result) for value, result in parsed.items()}
        values[column] = pd.Series([converted[value] for value in text], index=text.index, dtype=object)

    category = present("category")
    reject(
        category.str.len() > _CATEGORY_LENGTH,
        "category",
        f"longer than {_CATEGORY_LENGTH} characters",
        lambda value: f"{_show(value)} is longer than {_CATEGORY_LENGTH} characters",
    )
    values["category"] = category
    values["product_name"] = present("product_name")

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
