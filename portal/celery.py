"""The Celery app: JSON only, late acks, one message at a time per worker process (settings: CELERY_*)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, worker_init

from portal.startup import load_then_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Retries with exponential backoff and jitter, for tasks that opt in with autoretry_for.
RETRY_POLICY = {"max_retries": 5, "retry_backoff": 2, "retry_backoff_max": 300, "retry_jitter": True}


@task_postrun.connect
def _close_old_connections(task: Any = None, **_: Any) -> None:
    """What Django does after each HTTP request: drop a connection that broke or outlived CONN_MAX_AGE (the
    next task opens a fresh one); a healthy one is kept (CELERY_DB_REUSE_MAX stops Celery closing it).
    Not for eager tasks: they run inside the caller's transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def _load_before_fork(**_: Any) -> None:
    """In the parent, before the prefork pool forks its children: they share what it loaded (portal.startup)."""
    load_then_freeze()
