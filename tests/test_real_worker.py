"""A real Celery worker process takes a task from the configured broker (Redis in CI) and its effect lands in
the real test database (PostgreSQL in CI)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.db import transaction

from portal.models import WorkerHeartbeat
from portal.tasks import record_heartbeat

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_runs_a_task_enqueued_on_commit(celery_worker_process: Any) -> None:
    hostname = f"probe-{uuid.uuid4().hex[:8]}"
    with transaction.atomic():
        record_heartbeat.delay_on_commit(hostname)
        # Nothing is sent before the transaction commits.
        assert celery_worker_process.queue_depth_hint() in (None, 0)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if WorkerHeartbeat.objects.filter(hostname=hostname).exists():
            break
        time.sleep(0.2)
    else:
        pytest.fail("the worker did not run the task within 60 s:\n" + celery_worker_process.log())
    assert WorkerHeartbeat.objects.get(hostname=hostname).last_seen is not None
