"""Rows by primary key with the SQL compiled once.

Every request that shows recommendations reads its products live (stock, prices, what is active).
For a few dozen rows the ORM spends about three times longer compiling
`filter(pk__in=ids).values_list(...)` than the database spends answering it, so `RowsByKey`
compiles that query once per connection and size bucket, with stand-in keys, and then runs the
same SQL with the real keys in their places, through the same value converters. Converting
values can cost as much as the query (SQLite answers dates as text), so a caller may name the
values it reads at once and `complete()` the rest of a row only when it needs them.
"""
import threading
import weakref

from django.core.exceptions import ValidationError
from django.db import connections, router

#: Sizes the SQL is compiled for: a list of keys is padded (by repeating a key) to the next one.
BUCKETS = (8, 16, 32, 64, 128)


class RowsByKey:
    """`rows(ids)` answers as list(model._default_manager.filter(pk__in=ids).values_list(*names)),
    in no particular order. A query it cannot prepare this way (a manager adding annotations, a
    key that does not show as a parameter, more keys than the largest bucket) goes through the
    ORM.

    `converted`: the names whose values rows carry converted (default: all); the others are left
    as the database answered them until `complete(row)`. `annotations`: {name: expression} among
    the names (a value reduced in a subquery)."""

    def __init__(self, model, names, converted=None, annotations=None):
        self.model, self.names, self.annotations = model, list(names), dict(annotations or {})
        self.converted = None if converted is None else {self.names.index(name) for name in converted}
        self._prepared = weakref.WeakKeyDictionary()  # connection -> {bucket: _Prepared or None}
        self._lock = threading.Lock()

    def __call__(self, ids):
        connection = connections[router.db_for_read(self.model)]
        keys = [key for key in map(self._key, ids) if key is not None and self._fits(key, connection)]
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        bucket = next((size for size in BUCKETS if size >= len(keys)), None)
        prepared = self._prepare(connection, bucket) if bucket else None
        if prepared is None:
            return list(self._queryset(keys, connection.alias))
        return prepared.rows(connection, keys + keys[:1] * (bucket - len(keys)))

    def complete(self, row):
        """A row of this RowsByKey with every value converted (as it is, when it already was)."""
        if type(row) is not _Partial:
            return row
        return row.prepared.complete(row)

    def _key(self, value):
        """The primary key `value` stands for, or None when no row can have it ("abc" for a number)."""
        try:
            return self.model._meta.pk.get_prep_value(value)
        except (TypeError, ValueError, ValidationError):
            return None

    def _fits(self, key, connection):
        """False for a number the key's column cannot hold (the database would refuse the query)."""
        if not isinstance(key, int):
            return True
        low, high = connection.ops.integer_field_range(self.model._meta.pk.get_internal_type())
        return (low is None or key >= low) and (high is None or key <= high)

    def _queryset(self, keys, alias):
        rows = self.model._default_manager.using(alias).filter(pk__in=keys)
        if self.annotations:
            rows = rows.annotate(**self.annotations)
        return rows.values_list(*self.names)

    def _prepare(self, connection, bucket):
        by_bucket = self._prepared.get(connection)
        if by_bucket is None:
            with self._lock:
                by_bucket = self._prepared.setdefault(connection, {})
        if bucket not in by_bucket:
            by_bucket[bucket] = _Prepared.compile(self, connection, bucket)
        return by_bucket[bucket]


class _Prepared:
    def __init__(self, sql, params, positions, compiler, converters, prep, converted):
        self.sql, self.params, self.positions = sql, params, positions
        self.compiler, self.prep = compiler, prep
        if converted is None:
            self.converters, self.later = converters, {}
        else:
            self.converters = {n: c for n, c in converters.items() if n in converted}
            self.later = {n: c for n, c in converters.items() if n not in converted}

    @classmethod
    def compile(cls, rows_by_key, connection, bucket):
        pk = rows_by_key.model._meta.pk
        stand_ins = _stand_ins(pk, bucket)
        if stand_ins is None:
            return None
        queryset = rows_by_key._queryset(stand_ins, connection.alias)
        query = queryset.query
        if set(query.annotation_select) - set(rows_by_key.annotations) or query.extra_select:
            return None

        def prep(value):
            return pk.get_db_prep_value(value, connection, prepared=True)

        compiler = query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        params = list(params)
        wanted = [prep(pk.get_prep_value(value)) for value in stand_ins]
        positions = [n for n, param in enumerate(params) if param in wanted]
        if sorted(params[n] for n in positions) != sorted(wanted):  # each stand-in exactly once
            return None
        fields = [column for column, _, _ in compiler.select[: compiler.col_count]]
        converters = compiler.get_converters(fields)
        return cls(sql, params, positions, compiler, converters, prep, rows_by_key.converted)

    def rows(self, connection, keys):
        params = list(self.params)
        for position, key in zip(self.positions, keys):
            params[position] = self.prep(key)
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        if self.later:
            return [_Partial(row, self) for row in rows]
        return [tuple(row) for row in rows]

    def complete(self, row):
        [values] = self.compiler.apply_converters([row], self.later)
        return tuple(values)


class _Partial(tuple):
    """A row with some values still as the database answered them (RowsByKey.complete converts them)."""

    def __new__(cls, values, prepared):
        row = super().__new__(cls, values)
        row.prepared = prepared
        return row


def _stand_ins(pk, count):
    """`count` distinct keys no product has (negative numbers, or strings no shop would use)."""
    internal = pk.get_internal_type()
    if internal in {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
                    "PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField"}:  # fmt: skip
        return [-(10**12) - n for n in range(count)]
    if internal in {"CharField", "SlugField", "TextField"}:
        return [f"\x00stand-in-{n}" for n in range(count)]
    return None
