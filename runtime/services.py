"""Runtime writes other than ingest and findings: span retention and evaluation results."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.audit import audit_record
from runtime.models import Evaluation, SpanRecord

PRUNE_CHUNK = 10_000


def spans_prune(*, now: datetime | None = None) -> int:
    """Delete raw spans older than RUNTIME_SPAN_RETENTION_DAYS, in chunks so no transaction grows unbounded.
    Daily counters and findings stay."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.RUNTIME_SPAN_RETENTION_DAYS)
    removed = 0
    while True:
        ids = list(SpanRecord.objects.filter(received_at__lt=cutoff).values_list("pk", flat=True)[:PRUNE_CHUNK])
        if not ids:
            return removed
        removed += SpanRecord.objects.filter(pk__in=ids).delete()[0]


class EvaluationError(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(value)}" for key, value in errors.items()))
        self.errors = errors


@transaction.atomic
def evaluation_record(*, agent_name: str, data: dict[str, Any], reported_by: str) -> Evaluation:
    """Store one eval result reported by the agent's CI."""
    errors: dict[str, list[str]] = {}
    suite = str(data.get("suite", "")).strip()
    if not suite or len(suite) > 200:
        errors["suite"] = ["name the eval suite (1 to 200 characters)."]
    passed = data.get("passed")
    if not isinstance(passed, bool):
        errors["passed"] = ["must be true or false."]
    numbers: dict[str, float | None] = {}
    for name in ("score", "threshold"):
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            errors[name] = ["must be a number."]
        numbers[name] = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if errors:
        raise EvaluationError(errors)
    evaluation = Evaluation.objects.create(
        agent_name=agent_name,
        suite=suite,
        passed=bool(passed),
        score=numbers["score"],
        threshold=numbers["threshold"],
        version=str(data.get("version", ""))[:100],
        commit=str(data.get("commit", ""))[:64],
        run_url=str(data.get("run_url", ""))[:500],
        reported_by=reported_by[:200],
    )
    audit_record(
        action="runtime.evaluation.recorded",
        target=evaluation,
        changes={"agent": agent_name, "suite": suite, "passed": evaluation.passed, "score": evaluation.score},
    )
    return evaluation
