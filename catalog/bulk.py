"""Fast inserts of many rows: COPY on PostgreSQL, bulk_create elsewhere.

Django 5.2's bulk_create on PostgreSQL sends each column as an array (UNNEST), and psycopg adapts those arrays in
Python: for imports of thousands of entities that was most of the time. COPY streams rows instead. Primary keys are
taken from the table's sequence up front, so callers can link related rows in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


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
    from psycopg.types.json import Jsonb

    fields = list(model._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    # Plain attribute reads per column (Django's per-field preparation was most of the cost); JSON gets wrapped.
    attnames = [field.attname for field in fields]
    json_columns = {i for i, field in enumerate(fields) if field.get_internal_type() == "JSONField"}
    auto_now = [field for field in fields if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor behind Django's wrapper
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for instance in instances:
                for field in auto_now:
                    field.pre_save(instance, True)
                row = [getattr(instance, name) for name in attnames]
                for i in json_columns:
                    row[i] = Jsonb(row[i])
                copy.write_row(row)
    for instance in instances:
        instance._state.adding = False
        instance._state.db = "default"
