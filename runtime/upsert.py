"""Add to daily counter rows, creating the missing ones, with one short statement for every row:
INSERT ... ON CONFLICT (key) DO UPDATE SET n = table.n + excluded.n, sent for all rows at once (executemany). The
same SQL runs on PostgreSQL and SQLite.

Raw SQL because bench/telemetry.py's ingest figure needed it: a batch of 500 spans touches ~650 distinct counter
rows (agent x tool x capability x environment x day), and an ORM UPDATE per row (plus an INSERT for new ones)
held ingest to ~330 spans/s. Rows are sorted by key so concurrent batches lock them in one order (no deadlock).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, models


def add_counts_many(
    model: type[models.Model],
    *,
    key_fields: Sequence[str],
    count_fields: Sequence[str],
    latest_fields: Sequence[str] = (),
    rows: Sequence[Sequence[Any]],
) -> None:
    """Each row holds values for key_fields, then count_fields (added), then latest_fields (kept at the maximum)."""
    if not rows:
        return
    meta = model._meta
    fields = [
        cast("models.Field[Any, Any]", meta.get_field(name)) for name in (*key_fields, *count_fields, *latest_fields)
    ]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = [quote(field.column) for field in fields]
    keys = columns[: len(key_fields)]
    counts = columns[len(key_fields) : len(key_fields) + len(count_fields)]
    latest = columns[len(key_fields) + len(count_fields) :]
    updates = [f"{column} = {table}.{column} + excluded.{column}" for column in counts]
    updates += [
        f"{column} = CASE WHEN {table}.{column} IS NULL OR excluded.{column} > {table}.{column} "
        f"THEN excluded.{column} ELSE {table}.{column} END"
        for column in latest
    ]
    prepare = [
        (index, field)
        for index, field in enumerate(fields)
        if field.get_internal_type() in ("DateField", "DateTimeField")
    ]
    ordered = sorted(rows, key=lambda row: tuple(row[: len(key_fields)]))
    params: list[list[Any]] = []
    for row in ordered:
        values = list(row)
        for index, field in prepare:
            values[index] = field.get_db_prep_save(values[index], connection)
        params.append(values)
    with connection.cursor() as cursor:
        # One short statement for every row (psycopg pipelines executemany): a multi-row VALUES list was too long
        # for psycopg's query cache and parsing it again cost a quarter of ingest's time (bench/telemetry.py).
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(fields))}) "  # noqa: S608 (names are ours)
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}",
            params,
        )
