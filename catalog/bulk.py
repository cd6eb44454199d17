"""Fast inserts of many rows: COPY on PostgreSQL, bulk_create elsewhere.

Django 5.2's bulk_create on PostgreSQL sends each column as an array (UNNEST), and psycopg adapts those arrays in
Python: for imports of thousands of entities that was most of the time. COPY streams rows instead. Primary keys are
taken from the table's sequence up front, so callers can link related rows in the same transaction.

Callers that write thousands of rows pass plain tuples (`copy_rows`): building a model instance per row cost more
than writing it. `insert_instances` is the same path for code that already holds unsaved instances.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from django.db import connection, models
from psycopg.copy import QueuedLibpqWriter


def allocate_ids(model: type[models.Model], count: int) -> list[int]:
    """Take ids from the table's sequence up front (PostgreSQL); elsewhere the next free ones, for
    single-writer uses such as seed_scale on SQLite."""
    if count == 0:
        return []
    table = model._meta.db_table
    if connection.vendor != "postgresql":
        start = (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        return list(range(start, start + count))
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
        return [row[0] for row in cursor.fetchall()]


def copy_rows(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert rows given as tuples of plain values, one per column (attnames). Leave the primary key out of
    `columns` to let the database number rows whose ids nobody needs.

    JSON columns take Python values; other columns take what the field stores (str, int, bool, None, datetime).
    Database errors surface as Django's (IntegrityError, DataError...), so callers can catch DatabaseError.
    """
    if isinstance(rows, Sequence) and not rows:
        return
    by_attname = {field.attname: field for field in model._meta.concrete_fields}
    fields = [by_attname[name] for name in columns]
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=2000)
        return
    json_columns = [i for i, field in enumerate(fields) if field.get_internal_type() == "JSONField"]
    quoted = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    # Rows often share one JSON value (a default, a risk assessment): dump each object once. Keyed by id(); the
    # entry keeps the object alive, so its id cannot be reused by another object before the copy ends.
    dumped: dict[int, tuple[Any, str]] = {}
    dumps = json.dumps
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = cursor.cursor  # the psycopg cursor behind Django's wrapper
        # A writer thread sends while this one formats rows: the server ingests as they come.
        with raw.copy(f"COPY {table} ({quoted}) FROM STDIN", writer=QueuedLibpqWriter(raw)) as copy:
            write_row = copy.write_row
            if not json_columns:
                for row in rows:
                    write_row(row)
                return
            for row in rows:
                values = list(row)
                for i in json_columns:
                    value = values[i]
                    known = dumped.get(id(value))
                    if known is None:
                        known = dumped[id(value)] = (value, dumps(value))
                    values[i] = known[1]  # COPY's text format: PostgreSQL parses the JSON text itself
                write_row(values)


def insert_instances(model: type[models.Model], instances: Sequence[Any], *, batch_size: int = 2000) -> None:
    """Insert unsaved instances; afterwards each has its primary key."""
    if not instances:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(instances, batch_size=batch_size)  # SQLite returns the ids
        return
    ids = allocate_ids(model, sum(1 for instance in instances if instance.pk is None))
    id_iter = iter(ids)
    for instance in instances:
        if instance.pk is None:
            instance.pk = next(id_iter)
    fields = list(model._meta.concrete_fields)
    auto_now = [field for field in fields if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)]
    for instance in instances:
        for field in auto_now:
            field.pre_save(instance, True)
    columns = [field.attname for field in fields]
    # Plain attribute reads per column (Django's per-field preparation was most of the cost).
    copy_rows(model, columns, map(attrgetter(*columns), instances))
    for instance in instances:
        instance._state.adding = False
        instance._state.db = "default"
