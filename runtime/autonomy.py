"""The autonomy gate: raising an agent to level 4 or 5 needs evidence from runtime. N days of telemetry with a
tool-call error rate under the threshold, no open findings, and a passing eval result. The evidence is computed here
and attached to the approval request as the `autonomy_evidence` check (registered with approvals at start-up).

The catalog holds such a raise (catalog.services.autonomy_gate, set to `hold_autonomy_raise` at start-up): the agent
keeps its level, an `autonomy_change` request records the requested one, and approving it writes the level."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from catalog.models import Agent
from catalog.services import AUTONOMY_NEEDS_APPROVAL, HeldChange
from runtime.models import Finding, ModelUsageDaily, ToolUsageDaily
from runtime.selectors import latest_evaluation

logger = logging.getLogger(__name__)
GATED_LEVELS = AUTONOMY_NEEDS_APPROVAL
CHECK_NAME = "autonomy_evidence"


def autonomy_evidence(*, agent: Agent, level: int, today: date | None = None) -> dict[str, Any]:
    """What runtime knows for raising `agent` to `level`; `satisfied` and the reasons when not."""
    today = today or timezone.now().date()
    days_needed = settings.RUNTIME_AUTONOMY_DAYS
    max_error_rate = settings.RUNTIME_AUTONOMY_MAX_ERROR_RATE
    since = today - timedelta(days=days_needed - 1)
    tool_days = set(
        ToolUsageDaily.objects.filter(agent_key=agent.name, day__gte=since).values_list("day", flat=True).distinct()
    )
    model_days = set(
        ModelUsageDaily.objects.filter(agent_key=agent.name, day__gte=since).values_list("day", flat=True).distinct()
    )
    totals = ToolUsageDaily.objects.filter(agent_key=agent.name, day__gte=since).aggregate(
        calls=Sum("calls"), errors=Sum("errors")
    )
    calls, errors = totals["calls"] or 0, totals["errors"] or 0
    error_rate = errors / calls if calls else 0.0
    open_findings = Finding.objects.filter(agent_key=agent.name, state=Finding.State.OPEN).count()
    evaluation = latest_evaluation(agent_name=agent.name)
    days_seen = len(tool_days | model_days)
    reasons = []
    if level in GATED_LEVELS:
        if days_seen < days_needed:
            reasons.append(f"telemetry on {days_seen} of the last {days_needed} days (all {days_needed} needed)")
        if error_rate > max_error_rate:
            reasons.append(f"tool-call error rate {error_rate:.2%} is above {max_error_rate:.2%}")
        if open_findings:
            reasons.append(f"{open_findings} open runtime finding(s)")
        if evaluation is None:
            reasons.append("no eval result reported (POST /api/v1/agents/{name}/evaluations/)")
        elif not evaluation.passed:
            reasons.append(f"latest eval {evaluation.suite!r} failed")
    return {
        "agent": agent.name,
        "level": level,
        "gated": level in GATED_LEVELS,
        "satisfied": not reasons,
        "reasons": reasons,
        "window_days": days_needed,
        "days_with_telemetry": days_seen,
        "tool_calls": calls,
        "tool_errors": errors,
        "error_rate": round(error_rate, 4),
        "max_error_rate": max_error_rate,
        "open_findings": open_findings,
        "evaluation": None
        if evaluation is None
        else {
            "suite": evaluation.suite,
            "passed": evaluation.passed,
            "score": evaluation.score,
            "reported_at": evaluation.reported_at.isoformat(),
            "commit": evaluation.commit,
        },
        "computed_at": timezone.now().isoformat(),
    }


# --- the approvals hook --------------------------------------------------------------------------------------------


def _applies(kind: str, subject: Any) -> bool:
    return kind == "autonomy_change" and subject.agent is not None and "autonomy_level" in subject.proposed


def requested_level(subject: Any) -> int:
    return int(subject.proposed["autonomy_level"]["after"])


def check_autonomy_evidence(subject: Any) -> Any:
    from approvals.checks import CheckResult

    evidence = autonomy_evidence(agent=subject.agent, level=requested_level(subject))
    if evidence["satisfied"]:
        summary = (
            f"Evidence for autonomy {evidence['level']}: {evidence['days_with_telemetry']} days of telemetry, "
            f"error rate {evidence['error_rate']:.2%}, no open findings, eval passing."
        )
    else:
        summary = f"Not enough evidence for autonomy {evidence['level']}: " + "; ".join(evidence["reasons"]) + "."
    return CheckResult(evidence["satisfied"], summary, {"evidence": evidence})


def register() -> None:
    from approvals.checks import register_check

    register_check(CHECK_NAME, "Runtime evidence for autonomy 4-5", check_autonomy_evidence, _applies)


def hold_autonomy_raise(*, actor: Any, agent: Agent, current: int | None, requested: int) -> HeldChange:
    """catalog.services.autonomy_gate: file (or find) the autonomy change request that holds the raise, with the
    evidence check attached. Without a person to ask (an import by the system), nothing is filed: the level is
    not written, and the change says who can ask for it. A raise to another level than the one an open request
    asks for is an ApprovalConflict (409) naming that request."""
    from django.urls import reverse

    from approvals.submitting import autonomy_change_submit

    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    if user is None:
        logger.warning("autonomy of %s not raised to %s: no person to request it", agent.name, requested)
        return HeldChange(
            field="autonomy_level",
            current=current,
            requested=requested,
            request_id=None,
            message=(
                f"Autonomy {requested} not applied: raising an agent to 4 or 5 goes through an approval request, "
                f"which a person files (a maintainer of {agent.owner.name} changing it in the portal, the API, or "
                "an import of their own)."
            ),
        )
    request, _ = autonomy_change_submit(actor=user, agent=agent, current=current, requested=requested)
    waiting = "waiting for approval"
    if request.state == request.State.CHANGES_REQUESTED:
        waiting = "changes requested (resubmit it when the evidence is there)"
    return HeldChange(
        field="autonomy_level",
        current=current,
        requested=requested,
        request_id=request.pk,
        message=f"Autonomy {requested} requested: request #{request.pk}, {waiting}.",
        request_api_url=reverse("approvals-api:request-detail", args=[request.pk]),
    )


def open_autonomy_request(*, agent: Agent, requests: Iterable[Any]) -> dict[str, Any] | None:
    """The agent's open autonomy change request for its page, from the page's requests (which hold every open one:
    approvals.selectors.page_requests): the levels, the state and the evidence check of the current round (its
    summary once run)."""
    from approvals.models import ApprovalRequest, CheckRun

    request = next(
        (item for item in requests if item.is_open and item.kind == ApprovalRequest.Kind.AUTONOMY_CHANGE), None
    )
    if request is None:
        return None
    change = request.proposed_changes.get("autonomy_level") or {}
    check = CheckRun.objects.filter(request=request, round=request.round, name=CHECK_NAME).first()
    return {
        "request": request,
        "current": agent.autonomy_level,
        "requested": change.get("after"),
        "evidence_status": check.status if check is not None else "",
        "evidence_summary": check.summary if check is not None else "",
    }
