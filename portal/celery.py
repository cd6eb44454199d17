"""The Celery app: JSON only, late acks, one message at a time per worker process (settings: CELERY_*)."""

from __future__ import annotations

import gc
import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, worker_init

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
    """Load in the parent what every worker process needs and keeps, so the forked children share it instead of
    each loading it on its first task: Django and the apps are loaded by now; the URLconf is not, and tasks reverse
    URLs (notification links). It imports the MCP SDK (agents_api.mcp_server): 0.7 s of CPU, paid by each of the
    prefork children on its first notification before this. Then move it all out of the collector's sight, so full
    collections scan only what tasks create (and the children's copy-on-write pages stay shared)."""
    from django.urls import reverse

    reverse("portal:dashboard")
    gc.freeze()
