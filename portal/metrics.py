"""Task counts by state for /metrics. Request counts and latencies by view come from django-prometheus.

Celery workers are separate processes: with PROMETHEUS_MULTIPROC_DIR set (as `make run` and gunicorn
deployments do), their counters are aggregated into the web process's /metrics."""

from __future__ import annotations

import os
from typing import Any

from celery import signals
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.registry import Collector

TASKS = Counter("portal_celery_tasks_total", "Celery tasks by name and final state", ["task", "state"])


# Collectors that read the database at scrape time (plugins append theirs). They are kept out of the process
# registry: in multiprocess mode that registry is not what is exported, and their figures are not per process.
database_collectors: list[Collector] = []


def scrape() -> bytes:
    """The /metrics body: the process (or, with PROMETHEUS_MULTIPROC_DIR, every process's) metrics, then the
    database-backed figures once."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    extra = CollectorRegistry(auto_describe=False)
    for collector in database_collectors:
        extra.register(collector)
    return generate_latest(registry) + generate_latest(extra)


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
