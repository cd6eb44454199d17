"""Small database helpers for hot write paths, where Django's general machinery cost more than the write.

Each builds one plain statement from the model's own fields and sends it with Django's connection (so it runs
on PostgreSQL and SQLite alike); values are prepared by the fields, as save() would. Model save() methods and
signals are not run: callers use these for plain rows only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import connection, models

# SQLite's default limit of bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER before 3.32) is 999.
_MAX_PARAMETERS = 999


def _insert_sql(
    model: type[models.Model], suffix: str = "", *, rows: int = 1
) -> tuple[str, list[models.Field[Any, Any]]]:
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * rows)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {values}{suffix}"  # noqa: S608
    return sql, fields


def _insert_values(instance: models.Model, fields: list[models.Field[Any, Any]]) -> list[Any]:
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def insert_without_ids(model: type[models.Model], instances: Sequence[Any]) -> None:
    """INSERT a few unsaved instances whose ids nobody reads back, as one multi-row INSERT.

    Django 5.2's bulk_create on PostgreSQL sends every column as an array and unnests it; for a handful of rows
    adapting those arrays cost more than the statement. One statement of N rows also costs less than N pipelined
    ones (each of those is formatted, sent, parsed and planned on its own)."""
    if not instances:
        return
    _, fields = _insert_sql(model)
    per_statement = max(1, _MAX_PARAMETERS // len(fields))
    with connection.cursor() as cursor:
        for start in range(0, len(instances), per_statement):
            chunk = instances[start : start + per_statement]
            sql, _ = _insert_sql(model, rows=len(chunk))
            cursor.execute(sql, [value for instance in chunk for value in _insert_values(instance, fields)])


def insert_unless_present(model: type[models.Model], instances: Sequence[Any], *, unique_field: str) -> list[int]:
    """INSERT each instance unless a row with the same `unique_field` exists (ON CONFLICT DO NOTHING); the ids of
    the rows inserted. No savepoint per row: a duplicate neither fails the caller's transaction nor costs two
    more round trips."""
    quote = connection.ops.quote_name
    column = model._meta.get_field(unique_field).column
    sql, fields = _insert_sql(model, f" ON CONFLICT ({quote(column)}) DO NOTHING RETURNING id")
    inserted: list[int] = []
    with connection.cursor() as cursor:
        for instance in instances:
            cursor.execute(sql, _insert_values(instance, fields))
            row = cursor.fetchone()
            if row is not None:
                inserted.append(row[0])
    return inserted


def update_each(model: type[models.Model], instances: Sequence[Any], field_names: Sequence[str]) -> None:
    """UPDATE `field_names` of each instance by primary key, as one executemany. bulk_update's CASE expressions
    cost more Python than the statements."""
    if not instances:
        return
    fields = [model._meta.get_field(name) for name in field_names]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE id = %s"  # noqa: S608 (names are ours)
    rows = [
        [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in fields] + [instance.pk]
        for instance in instances
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def model_columns(model: type[models.Model], alias: str, *, exclude: Sequence[str] = ()) -> str:
    """The model's columns as `alias.column, ...` (less the `exclude`d attnames), in the order `model_from_row`
    reads them."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in _fields(model, tuple(exclude)))


def model_from_row(model: type[models.Model], values: Sequence[Any], *, exclude: Sequence[str] = ()) -> Any:
    """An instance built from the values of `model_columns`, converted as the ORM converts them (JSON text, SQLite's
    dates and booleans); `exclude`d fields are deferred, loaded on first access. For hot paths that send
    hand-written SQL instead of paying the ORM to compose it."""
    converted = list(values)
    for index, column, converters in _row_converters(model, tuple(exclude), connection.vendor):
        value = converted[index]
        for convert in converters:
            value = convert(value, column, connection)
        converted[index] = value
    return model.from_db(connection.alias, [field.attname for field in _fields(model, tuple(exclude))], converted)


def models_from_row(
    row: Sequence[Any], *parts: type[models.Model] | tuple[type[models.Model], Sequence[str]]
) -> tuple[list[Any], tuple[Any, ...]]:
    """Instances of each of `parts` from a row holding their `model_columns` one after the other (a part given as
    `(model, exclude)` had those columns left out), and the row's values after them."""
    instances = []
    at = 0
    for part in parts:
        model, exclude = part if isinstance(part, tuple) else (part, ())
        width = len(_fields(model, tuple(exclude)))
        instances.append(model_from_row(model, row[at : at + width], exclude=exclude))
        at += width
    return instances, tuple(row[at:])


def select_instances(
    model: type[models.Model], where: str, params: Sequence[Any], *, order_by: str = "", exclude: Sequence[str] = ()
) -> list[Any]:
    """`model` instances from `SELECT <columns> FROM <table> t WHERE <where> [ORDER BY <order_by>]`, the caller's
    clauses written over the alias `t` with %s placeholders (the model's Meta.ordering does not apply)."""
    sql = _select_sql(model, where, order_by, tuple(exclude), connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [model_from_row(model, row, exclude=exclude) for row in rows]


@functools.cache
def _select_sql(model: type[models.Model], where: str, order_by: str, exclude: tuple[str, ...], vendor: str) -> str:
    order = f" ORDER BY {order_by}" if order_by else ""
    table = connection.ops.quote_name(model._meta.db_table)
    return f"SELECT {model_columns(model, 't', exclude=exclude)} FROM {table} t WHERE {where}{order}"  # noqa: S608


@functools.cache
def _fields(model: type[models.Model], exclude: tuple[str, ...]) -> list[Any]:
    fields = model._meta.concrete_fields
    unknown = set(exclude) - {field.attname for field in fields}
    if unknown:  # callers count columns as the model's less the excluded: a stray name would shift them all
        raise ValueError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    return [field for field in fields if field.attname not in exclude]


@functools.cache
def _row_converters(
    model: type[models.Model], exclude: tuple[str, ...], vendor: str
) -> list[tuple[int, Any, list[Callable[..., Any]]]]:
    found = []
    for index, field in enumerate(_fields(model, exclude)):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((index, column, converters))
    return found


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
