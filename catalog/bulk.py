"""Fast inserts of many rows: COPY on PostgreSQL, bulk_create elsewhere.

Django 5.2's bulk_create on PostgreSQL sends each column as an array (UNNEST), and psycopg adapts those arrays in
Python: for imports of thousands of entities that was most of the time. COPY streams rows instead. Primary keys are
taken from the table's sequence up front, so callers can link related rows in the same transaction.

Callers that write thousands of rows pass plain tuples (`copy_rows`): building a model instance per row cost more
than writing it.
`BackgroundCopies` runs a series of `copy_rows` in a worker thread while the caller builds the next rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
        start = (model._default_manager.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
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
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=2000
        )
        return
    with connection.cursor() as cursor, connection.wrap_database_errors:
        _copy(cursor.cursor, *_statement(model, columns), rows)  # the psycopg cursor behind Django's wrapper


def _statement(model: type[models.Model], columns: Sequence[str]) -> tuple[str, list[int]]:
    """The COPY statement and the positions of its JSON columns."""
    by_attname = {field.attname: field for field in model._meta.concrete_fields}
    fields = [by_attname[name] for name in columns]
    quoted = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    json_columns = [i for i, field in enumerate(fields) if field.get_internal_type() == "JSONField"]
    return f"COPY {table} ({quoted}) FROM STDIN", json_columns


def _copy(
    cursor: Any, statement: str, json_columns: list[int], rows: Iterable[Sequence[Any]], *, queued: bool = True
) -> None:
    # Rows often share one JSON value (a default, a risk assessment): dump each object once. Keyed by id(); the
    # entry keeps the object alive, so its id cannot be reused by another object before the copy ends.
    dumped: dict[int, tuple[Any, str]] = {}
    dumps = json.dumps
    # A writer thread sends while this one formats rows, so the server ingests as they come; not for a thread that
    # is itself in the background, which would only add a third thread waiting for the GIL.
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor) if queued else None) as copy:
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


class BackgroundCopies:
    """`copy_rows` run in order by a worker thread while the calling thread computes what comes next.

    An import's COPYs keep the server busy for about as long as Python takes to build the rows: done one after the
    other, each side waits for the other. The worker uses the calling thread's connection, so the caller must not
    use it until the block ends (Django's connections belong to one thread; psycopg's lock would make it wait).
    The block waits for every COPY and raises the first failure as Django's DatabaseError, in the calling thread,
    so the caller's atomic block rolls back as usual. Elsewhere than PostgreSQL the copies run at once, inline.
    """

    def __init__(self) -> None:
        self._inline = connection.vendor != "postgresql"
        self._jobs: list[Future[None]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._failed = False

    def __enter__(self) -> BackgroundCopies:
        if not self._inline:
            connection.ensure_connection()
            self._raw = connection.connection
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-copy")
        return self

    def copy_rows(self, model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self._pool is None:
            copy_rows(model, columns, rows)
        elif rows:
            self._jobs.append(self._pool.submit(self._copy, *_statement(model, columns), rows))

    def _copy(self, statement: str, json_columns: list[int], rows: Sequence[Sequence[Any]]) -> None:
        if self._failed:
            return  # the transaction is aborted: the first error is the one to report
        try:
            with self._raw.cursor() as cursor:
                _copy(cursor, statement, json_columns, rows, queued=False)
        except BaseException:
            self._failed = True
            raise

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is None:
            return
        self._pool.shutdown(wait=True)  # even when the caller failed: the connection must be idle again
        for job in self._jobs:
            error = job.exception()
            if error is not None and exc_info[0] is None:
                with connection.wrap_database_errors:
                    raise error


def insert_instances(model: type[models.Model], instances: Sequence[Any], *, batch_size: int = 2000) -> None:
    """Insert unsaved instances; afterwards each has its primary key (bulk_create: benchmarks' set-up only, where
    its speed is no figure)."""
    model._default_manager.bulk_create(instances, batch_size=batch_size)
