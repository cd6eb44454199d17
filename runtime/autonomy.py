"""The autonomy gate: raising an agent to level 4 or 5 needs evidence from runtime. N days of telemetry with a
tool-call error rate under the threshold, no open findings, and a passing eval result. The evidence is computed here
and attached to the approval request as the `autonomy_evidence` check (registered with approvals at start-up);
raising the level opens a re-review request, so the change goes through approvals."""

from __future__ import annotations

import contextlib
import logging
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from catalog.models import Agent
from runtime.models import Finding, ModelUsageDaily, ToolUsageDaily
from runtime.selectors import latest_evaluation

logger = logging.getLogger(__name__)
GATED_LEVELS = (4, 5)
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
    agent = subject.agent
    return (
        kind == "re_review"
        and subject.grant is None
        and agent is not None
        and (agent.autonomy_level or 0) in GATED_LEVELS
    )


def check_autonomy_evidence(subject: Any) -> Any:
    from approvals.checks import CheckResult

    evidence = autonomy_evidence(agent=subject.agent, level=subject.agent.autonomy_level)
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


def on_agent_changed(sender: Any, instance: Any, changes: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Raising autonomy to 4 or 5 opens a re-review (unless one is open already, e.g. because the tier rose):
    the request carries the evidence check, so people decide with the evidence in front of them."""
    if not isinstance(instance, Agent) or not changes or "autonomy_level" not in changes:
        return
    before = changes["autonomy_level"].get("before") or 0
    after = changes["autonomy_level"].get("after") or 0
    if after not in GATED_LEVELS or after <= before:
        return
    from django.contrib.auth import get_user_model

    from approvals.services import ApprovalConflict, ApprovalError
    from approvals.submitting import request_submit
    from portal.context import current_actor

    actor = current_actor()
    user = get_user_model().objects.filter(pk=actor.user_id).first() if actor.user_id else None
    if user is None:
        logger.warning("autonomy of %s raised to %s without a person to request the re-review", instance.name, after)
        return
    # A request for this agent may be open already (e.g. the tier rose too): the evidence check runs in that one.
    with contextlib.suppress(ApprovalConflict, ApprovalError):
        request_submit(
            actor=user,
            kind="re_review",
            agent=instance,
            justification=f"Autonomy raised from {before or 'unknown'} to {after}; runtime evidence is checked.",
            check_permission=False,
        )
