"""Thin Celery wrappers: each calls one service. Idempotent and safe to run twice."""

from __future__ import annotations

from celery import shared_task

from runtime import findings, services


@shared_task(name="runtime.notify_finding", acks_late=True)
def notify_finding(finding_id: int) -> int:
    return len(findings.finding_notify(finding_id=finding_id))


@shared_task(name="runtime.prune_spans", acks_late=True)
def prune_spans() -> int:
    return services.spans_prune()


@shared_task(name="runtime.compute_scorecards", acks_late=True)
def compute_scorecards() -> int:
    from runtime.scorecards import scorecards_compute

    return scorecards_compute()


@shared_task(name="runtime.snapshot_kpis", acks_late=True)
def snapshot_kpis() -> int:
    from runtime.kpis import kpis_snapshot

    return kpis_snapshot()
