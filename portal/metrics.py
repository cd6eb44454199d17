"""Task counts by state for /metrics. Request counts and latencies by view come from django-prometheus.

Celery workers are separate processes: with PROMETHEUS_MULTIPROC_DIR set (as `make run` and gunicorn
deployments do), their counters are aggregated into the web process's /metrics."""

from __future__ import annotations

from typing import Any

from celery import signals
from prometheus_client import Counter

TASKS = Counter("portal_celery_tasks_total", "Celery tasks by name and final state", ["task", "state"])


def _name(sender: Any) -> str:
    return getattr(sender, "name", None) or str(sender)


@signals.task_success.connect
def _on_success(sender: Any = None, **kwargs: Any) -> None:
    TASKS.labels(task=_name(sender), state="success").inc()


@signals.task_failure.connect
def _on_failure(sender: Any = None, **kwargs: Any) -> None:
    TASKS.labels(task=_name(sender), state="failure").inc()


@signals.task_retry.connect
def _on_retry(sender: Any = None, **kwargs: Any) -> None:
    TASKS.labels(task=_name(sender), state="retry").inc()


@signals.task_received.connect
def _on_received(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    TASKS.labels(task=getattr(request, "name", "unknown"), state="received").inc()
