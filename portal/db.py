"""Where PostgreSQL and SQLite differ, and the two statements the ORM cannot say (docs/engineering.md).

- `insert_unless_present`: a conditional insert (ON CONFLICT DO NOTHING) that reports which rows it inserted, so a
  duplicate notification never fails the transition that files it (bench.approvals: a savepoint per notification
  cost two round trips each).
- `planned_for_each_value`: catalog searches run unprepared on PostgreSQL (bench.catalog: search p95).
- `filter_json_list_contains`: a JSON list holding a value (the API's `tag` filter).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import connection, models
from django.db.models import QuerySet


def _concrete_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


def insert_unless_present(model: type[models.Model], instances: Sequence[Any], *, unique_field: str) -> list[int]:
    """INSERT each instance unless a row with the same `unique_field` exists (ON CONFLICT DO NOTHING); the ids of
    the rows inserted. No savepoint per row: a duplicate neither fails the caller's transaction nor costs two
    more round trips. Field values are prepared by the fields, as save() would; save() and signals do not run."""
    quote = connection.ops.quote_name
    fields = _concrete_fields(model)
    unique = model._meta.get_field(unique_field)
    assert isinstance(unique, models.Field)
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608 (names are ours)
        f"ON CONFLICT ({quote(unique.column)}) DO NOTHING RETURNING id"
    )
    inserted: list[int] = []
    with connection.cursor() as cursor:
        for instance in instances:
            cursor.execute(
                sql, [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
            )
            row = cursor.fetchone()
            if row is not None:
                inserted.append(row[0])
    return inserted


def _execute_unprepared(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    if many or params is None or context["connection"].vendor != "postgresql":
        return execute(sql, params, many, context)
    context["connection"].validate_no_broken_transaction()
    with context["connection"].wrap_database_errors:
        return context["cursor"].cursor.execute(sql, params, prepare=False)


@contextlib.contextmanager
def planned_for_each_value() -> Iterator[None]:
    """Run the block's statements without preparing them, so PostgreSQL plans each one for its own values.

    Prepared statements (settings: DATABASE_PREPARED_STATEMENTS) save the planning of short repeated statements,
    but after five runs PostgreSQL may settle on one generic plan, blind to the values. Catalog searches need the
    values: how common a word or facet token is decides between collecting the matches and walking an index in
    sort order, and a generic plan that walks the index for a rare word reads most of the catalog. Statements
    still pass through Django's cursor wrappers, so they are logged and counted as any other."""
    with connection.execute_wrapper(_execute_unprepared):
        yield


def filter_json_list_contains(queryset: QuerySet[Any], field: str, value: str) -> QuerySet[Any]:
    """Rows whose JSON list `field` holds `value`: jsonb containment on PostgreSQL; SQLite has no JSON containment,
    and the stored list is JSON text, so the quoted element is matched there."""
    if connection.vendor == "postgresql":
        return queryset.filter(**{f"{field}__contains": [value]})
    return queryset.filter(**{f"{field}__icontains": f'"{value}"'})
