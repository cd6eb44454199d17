"""Worker processes keep their database connection between tasks (a new PostgreSQL backend per task cost more
than the task), yet still drop one that broke."""

from __future__ import annotations

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from approvals.tasks import sla_scan
from portal.celery import _close_old_connections, app

pytestmark = pytest.mark.django_db(transaction=True)


def test_celerys_fixup_leaves_the_connection_open_after_a_task() -> None:
    task = sla_scan
    fixup = DjangoWorkerFixup(app)
    connection.ensure_connection()
    before = connection.connection
    for _ in range(50):
        fixup.on_task_prerun(sender=task)
        fixup.on_task_postrun(sender=task)
    assert connection.connection is before


def test_after_a_task_a_broken_connection_is_dropped_and_a_healthy_one_kept_as_conn_max_age_says() -> None:
    task = sla_scan
    connection.ensure_connection()
    before = connection.connection
    _close_old_connections(task=task)
    if connection.settings_dict["CONN_MAX_AGE"]:  # PostgreSQL: persistent
        assert connection.connection is before
    else:  # SQLite: closed after each unit of work, as Django does per request
        assert connection.connection is None
    connection.ensure_connection()
    connection.errors_occurred = True
    connection.close_at = 0  # and too old
    _close_old_connections(task=task)
    assert connection.connection is None
