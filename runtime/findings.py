"""Findings: one open finding per (agent, tool, kind), counted up by every batch that sees it again. Opening one
notifies the owning team and security reviewers; people resolve it, accept it with a reason, or turn it into a
grant request. All writes audited."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Greatest, Least
from django.urls import reverse
from django.utils import timezone

from portal.audit import audit_record
from portal.types import User
from runtime.models import Finding

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
SEVERITY_BY_KIND = {
    Finding.Kind.NO_GRANT: Finding.Severity.HIGH,
    Finding.Kind.ENVIRONMENT_NOT_GRANTED: Finding.Severity.MEDIUM,
    Finding.Kind.CAPABILITY_NOT_GRANTED: Finding.Severity.HIGH,
    Finding.Kind.GRANT_PENDING: Finding.Severity.MEDIUM,
    Finding.Kind.GRANT_DENIED: Finding.Severity.HIGH,
    Finding.Kind.GRANT_REVOKED: Finding.Severity.CRITICAL,
    Finding.Kind.GRANT_EXPIRED: Finding.Severity.MEDIUM,
    Finding.Kind.UNKNOWN_AGENT: Finding.Severity.HIGH,
    Finding.Kind.UNKNOWN_TOOL: Finding.Severity.HIGH,
    Finding.Kind.TOKEN_AGENT_MISMATCH: Finding.Severity.CRITICAL,
}
GRANTABLE_KINDS = {
    Finding.Kind.NO_GRANT,
    Finding.Kind.ENVIRONMENT_NOT_GRANTED,
    Finding.Kind.CAPABILITY_NOT_GRANTED,
    Finding.Kind.GRANT_EXPIRED,
    Finding.Kind.GRANT_REVOKED,
    Finding.Kind.GRANT_DENIED,
}


class FindingError(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(value)}" for key, value in errors.items()))
        self.errors = errors


class FindingConflict(Exception):
    """The finding is no longer open."""


def severity_of(kind: str) -> str:
    return str(SEVERITY_BY_KIND.get(kind, Finding.Severity.HIGH))  # type: ignore[call-overload]


def _bump(key: dict[str, Any], *, count: int, first_seen: datetime, last_seen: datetime, **latest: Any) -> int:
    return Finding.objects.filter(**key, state=Finding.State.OPEN).update(
        count=F("count") + count,
        first_seen=Least(F("first_seen"), first_seen),
        last_seen=Greatest(F("last_seen"), last_seen),
        **latest,
    )


def finding_record(
    *,
    agent_key: str,
    tool_key: str,
    kind: str,
    count: int,
    first_seen: datetime,
    last_seen: datetime,
    capability: str = "",
    environment: str = "",
    detail: str = "",
    severity: str = "",
    owner_team: str = "",
    agent_id: int | None = None,
) -> int | None:
    """Count occurrences into the open finding, opening it if there is none. Returns the id of a finding opened
    now (None when an open one was counted up). Race-safe: a partial unique index allows one open finding per key."""
    key = {"agent_key": agent_key[:200], "tool_key": tool_key[:200], "kind": kind}
    latest = {"capability": capability[:200], "environment": environment[:63], "detail": detail[:500]}
    if _bump(key, count=count, first_seen=first_seen, last_seen=last_seen, **latest):
        return None
    severity = severity or severity_of(kind)
    try:
        with transaction.atomic():
            finding = Finding.objects.create(
                **key,
                **latest,
                count=count,
                first_seen=first_seen,
                last_seen=last_seen,
                severity=severity,
                owner_team=owner_team,
            )
    except IntegrityError:
        _bump(key, count=count, first_seen=first_seen, last_seen=last_seen, **latest)
        return None
    audit_record(
        action="runtime.finding.opened",
        target=finding,
        changes={"kind": kind, "agent": agent_key, "tool": tool_key, "severity": severity, "detail": detail},
    )
    transaction.on_commit(lambda: _after_open(finding.pk))
    if severity == Finding.Severity.CRITICAL and agent_id is not None and settings.RUNTIME_SUSPEND_ON_CRITICAL:
        from portal.tokens import tokens_suspend_for_agent

        tokens_suspend_for_agent(agent_id=agent_id, reason=f"critical finding #{finding.pk}: {kind}")
    return finding.pk


def _after_open(finding_id: int) -> None:
    from runtime.tasks import notify_finding

    notify_finding.delay(finding_id)


def finding_notify(*, finding_id: int) -> list[int]:
    """Tell the owning team's maintainers (and chat channel) and the security reviewers about a new finding."""
    from approvals.notifications import notify_role_members, notify_team
    from catalog.models import Team
    from portal.roles import SECURITY_REVIEWER

    finding = Finding.objects.filter(pk=finding_id).first()
    if finding is None:
        return []
    subject_line = f"Runtime finding ({finding.severity}): {finding.get_kind_display()}: {finding.agent_key}"
    if finding.tool_key:
        subject_line += f" -> {finding.tool_key}"
    url = settings.SITE_URL.rstrip("/") + reverse("runtime:finding", args=[finding.pk])
    body = f"{subject_line}\n{finding.detail}\nFirst seen {finding.first_seen:%Y-%m-%d %H:%M %Z}.\n{url}"
    dedupe = f"finding:{finding.pk}"
    sent: list[int] = []
    with transaction.atomic():
        team = Team.objects.filter(name=finding.owner_team).first() if finding.owner_team else None
        if team is not None:
            sent += notify_team(team, event="finding", subject_line=subject_line, body=body, dedupe=dedupe)
        sent += notify_role_members(
            SECURITY_REVIEWER, event="finding", subject_line=subject_line, body=body, dedupe=dedupe
        )
    return sent


def _close(finding_id: int, *, state: str, actor: User, reason: str, **extra: Any) -> Finding:
    updated = Finding.objects.filter(pk=finding_id, state=Finding.State.OPEN).update(
        state=state, closed_at=timezone.now(), closed_by=actor, reason=reason, **extra
    )
    finding = Finding.objects.get(pk=finding_id)
    if not updated:
        raise FindingConflict(f"Finding #{finding_id} is {finding.state}, not open.")
    audit_record(
        action=f"runtime.finding.{state}",
        target=finding,
        changes={"state": {"before": "open", "after": state}, "reason": reason, **extra},
    )
    return finding


def _require_manager(actor: User, finding: Finding) -> None:
    from runtime.selectors import can_manage_finding

    if not can_manage_finding(user=actor, finding=finding):
        raise PermissionError("Only the agent's owning team maintainers, security reviewers or platform admins can.")


@transaction.atomic
def finding_resolve(*, actor: User, finding: Finding, reason: str = "") -> Finding:
    _require_manager(actor, finding)
    return _close(finding.pk, state=Finding.State.RESOLVED, actor=actor, reason=reason.strip()[:2000])


@transaction.atomic
def finding_accept(*, actor: User, finding: Finding, reason: str) -> Finding:
    _require_manager(actor, finding)
    if not reason.strip():
        raise FindingError({"reason": ["say why the finding is accepted (it stays on record)."]})
    return _close(finding.pk, state=Finding.State.ACCEPTED, actor=actor, reason=reason.strip()[:2000])


@transaction.atomic
def finding_request_grant(*, actor: User, finding: Finding, justification: str = "") -> Finding:
    """Turn the finding into a grant request for exactly what was called, submitted to approvals."""
    from approvals.submitting import request_submit
    from catalog.models import Agent, Tool
    from catalog.services import grant_request

    if finding.kind not in GRANTABLE_KINDS:
        raise FindingError({"kind": [f"a {finding.get_kind_display()} finding cannot become a grant request."]})
    agent = Agent.objects.filter(name=finding.agent_key).first()
    tool = Tool.objects.filter(name=finding.tool_key).first()
    if agent is None or tool is None:
        raise FindingError({"agent": ["the agent and tool must both be in the catalog."]})
    known = set(tool.capabilities.values_list("name", flat=True))
    capabilities = [finding.capability] if finding.capability in known else []
    grant, _ = grant_request(
        actor=actor,
        agent=agent,
        tool=tool,
        environment=finding.environment or "production",
        capability_names=capabilities,
    )
    if grant.status == "approved":
        raise FindingError(
            {"kind": [f"grant #{grant.pk} is approved; widening its capabilities is a change of that grant."]}
        )
    from approvals.services import ApprovalConflict

    # A request for this grant may be open already: the finding then points at the same grant.
    with contextlib.suppress(ApprovalConflict):
        request_submit(
            actor=actor,
            kind="tool_grant",
            grant=grant,
            justification=justification or f"Seen at runtime (finding #{finding.pk}): {finding.detail}"[:2000],
        )
    return _close(
        finding.pk,
        state=Finding.State.GRANT_REQUESTED,
        actor=actor,
        reason=justification.strip()[:2000],
        grant_id=grant.pk,
    )


@dataclass(frozen=True)
class DeniedCalls:
    """Calls of an (agent, tool) the call-time grant check refused with one verdict: how many, when, the latest."""

    agent: str
    tool: str
    verdict: str
    capability: str
    environment: str
    reason: str
    count: int
    first_seen: datetime
    last_seen: datetime


def findings_from_denied_checks(denied: Iterable[DeniedCalls]) -> None:
    """Count calls the call-time grant check refused (`POST /api/v1/grants/check/`, the portal's MCP server) into
    their findings, as if their spans had arrived (runtime.denials sends them, a few hundred at a time).

    One transaction: the open findings are locked in id order (two processes counting the same findings wait for
    each other instead of deadlocking) and counted up by one UPDATE; findings not open yet are opened one by one.
    """
    from catalog.models import Agent

    denied = list(denied)
    names = {calls.agent.lower() for calls in denied}
    known = {
        name: (pk, owner)
        for name, pk, owner in Agent.objects.filter(name__in=names).values_list("name", "pk", "owner__name")
    }
    merged: dict[tuple[str, str, str], DeniedCalls] = {}
    kinds = set(Finding.Kind.values)  # Django builds the list anew on every access
    for calls in denied:
        kind = calls.verdict if calls.agent.lower() in known else Finding.Kind.UNKNOWN_AGENT
        if kind not in kinds:
            continue
        key = (calls.agent.lower()[:200], calls.tool.lower()[:200], str(kind))
        if (before := merged.get(key)) is not None:
            latest = calls if calls.last_seen >= before.last_seen else before
            calls = replace(
                latest,
                count=before.count + calls.count,
                first_seen=min(before.first_seen, calls.first_seen),
            )
        merged[key] = calls
    if not merged:
        return
    with transaction.atomic():
        # The open findings of these agents and kinds (a superset, cheaper to ask for than each key), then the keys.
        candidates = (
            Finding.objects.filter(
                state=Finding.State.OPEN,
                agent_key__in={agent for agent, _, _ in merged},
                kind__in={kind for _, _, kind in merged},
            )
            .select_for_update()
            .order_by("pk")
            .values_list("pk", "agent_key", "tool_key", "kind")
        )
        open_ids = {(agent, tool, kind): pk for pk, agent, tool, kind in candidates if (agent, tool, kind) in merged}
        if open_ids:
            # One UPDATE, its CASEs grouped by value (a CASE of a few hundred branches cost 0.3 s of CPU to build):
            # counts by how many repeats, last seen to the second. The capability, environment and detail stay
            # those of the denial that opened the finding.
            by_count: dict[int, list[int]] = defaultdict(list)
            by_second: dict[datetime, list[int]] = defaultdict(list)
            for key, pk in open_ids.items():
                by_count[merged[key].count].append(pk)
                by_second[merged[key].last_seen.replace(microsecond=0)].append(pk)
            Finding.objects.filter(pk__in=open_ids.values()).update(
                count=F("count") + Case(*(When(pk__in=pks, then=Value(n)) for n, pks in by_count.items())),
                last_seen=Greatest(
                    F("last_seen"), Case(*(When(pk__in=pks, then=Value(at)) for at, pks in by_second.items()))
                ),
            )
        for (agent, tool, kind), calls in merged.items():
            if (agent, tool, kind) in open_ids:
                continue
            owner = known.get(agent)
            finding_record(
                agent_key=agent,
                tool_key=tool,
                kind=kind,
                count=calls.count,
                first_seen=calls.first_seen,
                last_seen=calls.last_seen,
                capability=calls.capability,
                environment=calls.environment,
                detail=calls.reason,
                owner_team=owner[1] if owner else "",
                agent_id=owner[0] if owner else None,
            )
