"""Small database helpers for hot write paths, where Django's general machinery cost more than the write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def insert_without_ids(model: type[models.Model], instances: Sequence[Any]) -> None:
    """INSERT a few unsaved instances whose ids nobody reads back, as one executemany (pipelined on PostgreSQL).

    Django 5.2's bulk_create on PostgreSQL sends every column as an array and unnests it; for a handful of rows
    adapting those arrays cost more than the statements. Field defaults and auto_now values are applied as
    save() would; model save() methods and signals are not run (callers use this for plain rows only)."""
    if not instances:
        return
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 (names are ours)
    rows = [
        [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
        for instance in instances
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
