"""The order-history CSV file: its columns, and reading it as chunks of text rows that know their
physical lines (header = line 1; a row whose quoted field spans lines is at its first line).

Bytes that are not UTF-8, or a quote left open to the end, stop the reading at the row that holds
them, naming its line (and the bytes' column and position); the rows read before it are still
checked, so that the first error of a file is the one told.
"""
import csv
import io
import itertools
import re
from contextlib import contextmanager

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("user_id", "order_id", "product_id")
OPTIONAL_COLUMNS = ("ordered_at", "order_number", "quantity", "price", "category", "product_name")

# A byte the UTF-8 decoder could not read, kept by the "surrogateescape" error handler as U+DC80-U+DCFF.
_UNDECODED = re.compile("[\udc80-\udcff]")
# A last line after the file's: read as a row of its own, unless a quoted value is still open. No
# text decodes to it (the decoder makes U+DC80-U+DCFF only).
_END_LINE = "\ud800\n"
_END = ["\ud800"]
# csv's field size limit while a file is read: the lengths are checked per column, with the row's line.
_FIELD_SIZE_LIMIT = 2**31 - 1


class InvalidRow(ValueError):
    """A row (or the header, line 1) that cannot be imported: where, and why.

    `reason` names the value ("'abc' is not a whole number"); `problem` leaves it out, so that
    alike rows are counted together ("not a whole number"). A row that is not `skippable` stops the
    import even when invalid rows are skipped (the file is not UTF-8: skipping would drop every
    row with an accent).
    """

    def __init__(self, line, column, reason, problem=None, *, skippable=True):
        self.line = line
        self.column = column
        self.reason = reason
        self.problem = problem or reason
        self.skippable = skippable
        super().__init__(str(self))

    def __str__(self):
        where = f"line {self.line}, column {self.column!r}" if self.column else f"line {self.line}"
        return f"{where}: {self.reason}"

    @property
    def kind(self):
        """The key under which alike skipped rows are counted."""
        return f"column {self.column!r}: {self.problem}" if self.column else self.problem


class UnreadableFile(ValueError):
    """The file is missing or cannot be read."""


def column_positions(names):
    """{column: position} of the known columns among a header's names (case and spaces aside);
    raises InvalidRow (line 1) for a missing required column or a known one named twice."""
    positions = {}
    for position, name in enumerate(str(name).strip().lower() for name in names):
        if name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            if name in positions:
                raise InvalidRow(1, name, "the header names this column twice", "repeated column")
            positions[name] = position
    for required in REQUIRED_COLUMNS:
        if required not in positions:
            header = ", ".join(str(name) for name in names) or "nothing"
            raise InvalidRow(1, required, f"the header has no such column (it has: {header})", "missing column")
    return positions


def csv_chunks(handle, chunk_size):
    """Yields (frame of the known columns as text, physical line of each row, InvalidRow of the rows
    left out of the frame) from a binary file object. Blank rows are passed over."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        with _long_fields():
            yield from _chunks(csv.reader(itertools.chain(text, [_END_LINE])), chunk_size)
    finally:
        text.detach()  # the caller's file stays open


def _chunks(reader, chunk_size):
    header = _next(reader, 1)
    if header is None:
        raise InvalidRow(1, None, f"the file is empty; the header needs {', '.join(REQUIRED_COLUMNS)}")
    undecoded = _undecoded(header, 1, [])
    if undecoded:
        raise undecoded
    names = [name.strip().lower() for name in header]
    positions = column_positions(header)
    records, lines, errors = [], [], []
    while True:
        line = reader.line_num + 1
        try:
            record = _next(reader, line)
            if record is not None and any(record):
                _check(record, line, names)
                records.append(record)
                lines.append(line)
        except InvalidRow as error:
            errors.append(error)
            if not error.skippable:  # the rest of the file cannot be read: the rows before it are still checked
                record = None
        if record is None or len(records) + len(errors) >= chunk_size:
            if records or errors:
                yield _frame(records, positions), np.array(lines, dtype=np.int64), errors
            if record is None:
                return
            records, lines, errors = [], [], []


def _next(reader, line):
    """The next record, or None at the end of the file."""
    try:
        record = next(reader)
    except csv.Error as exc:
        raise InvalidRow(line, None, f"not readable as CSV ({exc})", skippable=False) from exc
    if record == _END:
        return None
    if record and record[-1].endswith(_END_LINE):
        raise InvalidRow(line, None, "a quoted value is not closed before the end of the file", skippable=False)
    return record


def _check(record, line, names):
    """Raises InvalidRow for a record with bytes that are not UTF-8 or with too many fields."""
    undecoded = _undecoded(record, line, names)
    if undecoded:
        raise undecoded
    if len(record) > len(names):
        raise InvalidRow(line, None, f"expected {len(names)} fields, saw {len(record)}", "wrong number of fields")


def _frame(records, positions):
    """The known columns of `records` (short rows end in empty values)."""
    return pd.DataFrame(
        {
            column: [record[position] if position < len(record) else "" for record in records]
            for column, position in positions.items()
        },
        dtype=str,
    )


def _undecoded(record, line, names):
    """An InvalidRow naming the first byte of `record` that was not UTF-8, or None."""
    if not _UNDECODED.search("".join(record)):
        return None
    for position, value in enumerate(record):
        found = _UNDECODED.search(value)
        if found:
            byte = ord(found.group()) - 0xDC00
            offset = len(value[: found.start()].encode("utf-8", "surrogateescape")) + 1
            column = names[position] if position < len(names) else None
            where = "the value" if column else f"the {_ordinal(position + 1)} field"
            return InvalidRow(
                line,
                column,
                f"not UTF-8 text (byte {byte:#04x} at byte {offset} of {where}); save the file as UTF-8",
                "not UTF-8 text",
                skippable=False,
            )


def _ordinal(n):
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@contextmanager
def _long_fields():
    """csv's field size limit raised while a file is read (it is the process's: restored after)."""
    limit = csv.field_size_limit(_FIELD_SIZE_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(limit)
