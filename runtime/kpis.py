"""The KPIs platform teams report, for the dashboard page and for /metrics (one set of functions for both).

Figures over time read daily snapshot rows written by beat (agents and tools by tier, open findings, time to
approval, SLA attainment); the live figures are single grouped queries on indexed columns."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from approvals.models import ApprovalRequest, Decision
from catalog.models import Agent, Tool
from runtime.models import Finding, KpiSnapshot, ModelUsageDaily, ToolUsageDaily

WINDOW_DAYS = 30
LOOKBACK_DAYS = 90
AGE_BUCKETS = ((1, "< 1 day"), (7, "1-7 days"), (30, "7-30 days"), (None, "> 30 days"))
APPROVAL_HOURS_BUCKETS = (1, 4, 8, 24, 48, 96, 168, 336, 720)
OPEN_STATES = ("checking", "in_review", "changes_requested")


def tier_counts() -> dict[str, dict[str, int]]:
    return {
        "agents": dict(Agent.objects.values_list("risk_tier").annotate(n=Count("id")).order_by()),
        "tools": dict(Tool.objects.values_list("risk_tier").annotate(n=Count("id")).order_by()),
    }


def requests_by_state() -> dict[str, int]:
    return dict(ApprovalRequest.objects.values_list("state").annotate(n=Count("id")).order_by())


def open_requests_by_age(*, now: datetime | None = None) -> list[tuple[str, int]]:
    """Open requests by how long ago they were opened, in one statement."""
    now = now or timezone.now()
    buckets: dict[str, Q] = {}
    previous = 0
    for days, _label in AGE_BUCKETS:
        condition = Q(created_at__lte=now - timedelta(days=previous))
        if days is not None:
            condition &= Q(created_at__gt=now - timedelta(days=days))
        buckets[f"age_{len(buckets)}"] = condition
        previous = days or 0
    counts = ApprovalRequest.objects.filter(state__in=OPEN_STATES).aggregate(
        **{name: Count("id", filter=condition) for name, condition in buckets.items()}
    )
    return [(label, counts[name]) for name, (_, label) in zip(buckets, AGE_BUCKETS, strict=True)]


def sla_breaches(*, now: datetime | None = None) -> int:
    """Requests in review past their stage's due time now."""
    return ApprovalRequest.objects.filter(state="in_review", due_at__lt=now or timezone.now()).count()


def approval_hours(*, now: datetime | None = None) -> list[float]:
    """Hours from submission to approval of requests approved in the last LOOKBACK_DAYS."""
    since = (now or timezone.now()) - timedelta(days=LOOKBACK_DAYS)
    rows = ApprovalRequest.objects.filter(
        state="approved", decided_at__gte=since, submitted_at__isnull=False
    ).values_list("submitted_at", "decided_at")
    return [
        max(0.0, (decided - submitted).total_seconds() / 3600) for submitted, decided in rows if submitted and decided
    ]


def sla_attainment(*, now: datetime | None = None) -> dict[str, tuple[int, int]]:
    """Per stage name: (decisions made within the stage's SLA, decisions) over the last LOOKBACK_DAYS. A stage starts
    when the previous stage's decision of the same round was made (the first at submission)."""
    since = (now or timezone.now()) - timedelta(days=LOOKBACK_DAYS)
    decisions = (
        Decision.objects.filter(created_at__gte=since)
        .select_related("request")
        .only("round", "stage_index", "stage_name", "created_at", "request__submitted_at", "request__policy_snapshot")
        .order_by("request_id", "round", "stage_index")
    )
    previous: dict[tuple[int, int], datetime] = {}
    result: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for decision in decisions:
        key = (decision.request_id, decision.round)
        started = previous.get(key) or decision.request.submitted_at or decision.created_at
        stages = decision.request.policy_snapshot.get("stages", [])
        sla = stages[decision.stage_index]["sla_hours"] if decision.stage_index < len(stages) else 48
        counts = result[decision.stage_name]
        counts[1] += 1
        counts[0] += 1 if decision.created_at - started <= timedelta(hours=sla) else 0
        previous[key] = decision.created_at
    return {name: (met, total) for name, (met, total) in result.items()}


def open_findings_by_kind() -> dict[str, int]:
    return dict(Finding.objects.filter(state="open").values_list("kind").annotate(n=Count("id")).order_by())


def findings_opened_per_day(*, today: date | None = None) -> list[tuple[str, int]]:
    today = today or timezone.now().date()
    since = today - timedelta(days=WINDOW_DAYS - 1)
    rows = dict(
        Finding.objects.filter(created_at__date__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(str(since + timedelta(days=i)), rows.get(since + timedelta(days=i), 0)) for i in range(WINDOW_DAYS)]


def top_agents_by_calls(*, today: date | None = None, limit: int = 20) -> list[tuple[str, int]]:
    """Calls (tool and model) per agent over the last WINDOW_DAYS, highest first. Read by the hourly snapshot, not
    by the page: over 1,000 agents' 30 days it cost the KPI page ~150 ms (bench/telemetry.py)."""
    since = (today or timezone.now().date()) - timedelta(days=WINDOW_DAYS - 1)
    totals: dict[str, int] = defaultdict(int)
    for model in (ToolUsageDaily, ModelUsageDaily):
        for agent, calls in (
            model.objects.filter(day__gte=since).values_list("agent_key").annotate(n=Sum("calls")).order_by()
        ):
            totals[agent] += calls or 0
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _hours_summary(hours: list[float]) -> dict[str, float]:
    if not hours:
        return {}
    ordered = sorted(hours)
    return {"median": round(median(ordered), 1), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1)}


def kpis_snapshot(*, now: datetime | None = None) -> int:
    """Write today's row of each figure tracked over time (idempotent: re-running the day replaces its rows)."""
    now = now or timezone.now()
    day = now.date()
    rows: list[KpiSnapshot] = []
    for kind, counts in tier_counts().items():
        rows += [KpiSnapshot(day=day, figure=f"{kind}_by_tier", label=t, value=n) for t, n in counts.items()]
    rows += [KpiSnapshot(day=day, figure="findings_open", label=k, value=n) for k, n in open_findings_by_kind().items()]
    for label, value in _hours_summary(approval_hours(now=now)).items():
        rows.append(KpiSnapshot(day=day, figure="time_to_approval_hours", label=label, value=value))
    rows += [
        KpiSnapshot(day=day, figure="top_agents_calls", label=a, value=n) for a, n in top_agents_by_calls(today=day)
    ]
    for stage, (met, total) in sla_attainment(now=now).items():
        rows.append(KpiSnapshot(day=day, figure="sla_attainment", label=stage[:200], value=round(met / total, 4)))
    with transaction.atomic():
        KpiSnapshot.objects.filter(day=day).delete()
        KpiSnapshot.objects.bulk_create(rows)
    return len(rows)


def _series(figure: str, since: date) -> dict[str, list[tuple[str, float]]]:
    series: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for day, label, value in KpiSnapshot.objects.filter(figure=figure, day__gte=since).values_list(
        "day", "label", "value"
    ):
        series[label].append((str(day), value))
    return dict(series)


def dashboard(*, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the KPI page, as plain data."""
    now = now or timezone.now()
    since = now.date() - timedelta(days=WINDOW_DAYS - 1)
    latest_sla = KpiSnapshot.objects.filter(figure="sla_attainment").order_by("-day").values_list("day", flat=True)[:1]
    latest_top = (
        KpiSnapshot.objects.filter(figure="top_agents_calls").order_by("-day").values_list("day", flat=True)[:1]
    )
    hours = _series("time_to_approval_hours", since)
    return {
        "agents_by_tier": _series("agents_by_tier", since),
        "tools_by_tier": _series("tools_by_tier", since),
        "findings_open": _series("findings_open", since),
        "time_to_approval": hours,
        "sla_attainment": [
            (label, value * 100)
            for label, value in KpiSnapshot.objects.filter(figure="sla_attainment", day__in=latest_sla)
            .order_by("label")
            .values_list("label", "value")
        ],
        "requests_by_state": sorted(requests_by_state().items()),
        "open_requests_by_age": open_requests_by_age(now=now),
        "sla_breaches": sla_breaches(now=now),
        "findings_opened_per_day": findings_opened_per_day(today=now.date()),
        "top_agents": [
            (label, value)
            for label, value in KpiSnapshot.objects.filter(figure="top_agents_calls", day__in=latest_top)
            .order_by("-value", "label")
            .values_list("label", "value")[:10]
        ],
    }
