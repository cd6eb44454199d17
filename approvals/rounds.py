"""What a change of a subject's facts does to its requests (catalog.signals.entity_changed, approvals.receivers).

- An open request on the subject, or on a grant involving it, whose facts fingerprint is no longer the subject's
  leaves review for a new round: the checks run again on the new facts, the stage decisions of the old round no
  longer count (decisions are per round), the tier, risk and policy are those of the new facts, and the round
  records what changed, for reviewers. A draft only takes the new facts.
- An approved subject whose tier rose, or (a tool) that gained a capability, gets a re-review request. A tool whose
  tier rose leaves the MCP registry (status pending review) until the re-review approves it again.

Everything runs in the transaction of the change, under the row locks of the subject and then of the requests (the
order approvals' transitions take them too), so a decision either committed before the change (and the change then
reopens review) or is refused after it, because the request's fingerprint moved on.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from approvals import notifications
from approvals.checks import Subject
from approvals.models import OPEN_STATES, ApprovalRequest, CheckRun
from approvals.policies import policy_snapshot
from approvals.services import (
    TIER_RANK,
    _owning_team_id,
    _subject_key,
    _user_label,
    current_assessment,
    reviewed_facts,
    subject_of,
)
from approvals.submitting import _create_checks, _submit_locked
from catalog import fingerprints
from catalog import services as catalog
from catalog.facts import ReviewedFacts
from catalog.models import Agent, Tool, ToolGrant
from portal.audit import audit_record
from portal.types import User

MAX_CHANGES_IN_AUDIT = 50


def facts_changed(*, instance: Agent | Tool, changed_by: User | None) -> list[ApprovalRequest]:
    """React to a change of `instance`'s facts; returns the open requests that started a new round."""
    if isinstance(instance, Tool):
        involving = Q(tool_id=instance.pk) | Q(grant__tool_id=instance.pk)
    else:
        involving = Q(agent_id=instance.pk) | Q(grant__agent_id=instance.pk)
    open_requests = list(
        ApprovalRequest.objects.select_for_update(of=("self",))
        .select_related("requester", "owning_team")
        .filter(involving, state__in=OPEN_STATES)
        .order_by("pk")
    )
    restarted = []
    for request in open_requests:
        if _refresh(request, changed_by=changed_by):
            restarted.append(request)
    open_keys = {request.subject_key for request in open_requests}
    if isinstance(instance, Tool):
        subjects = [Subject(agent=None, tool=instance, grant=None)]
        grants = ToolGrant.objects.filter(tool=instance, status=ToolGrant.Status.APPROVED)
    else:
        subjects = [Subject(agent=instance, tool=None, grant=None)]
        grants = ToolGrant.objects.filter(agent=instance, status=ToolGrant.Status.APPROVED)
    subjects += [
        Subject(agent=grant.agent, tool=grant.tool, grant=grant)
        for grant in grants.select_related("agent__owner", "tool__owner")
    ]
    for subject in subjects:
        if _subject_key(subject) not in open_keys:
            reopen_if_riskier(subject=subject, changed_by=changed_by)
    return restarted


def _refresh(request: ApprovalRequest, *, changed_by: User | None) -> bool:
    subject = subject_of(request, with_capabilities=True)
    reviewed = reviewed_facts(subject)
    if reviewed.fingerprint == request.facts_fingerprint:
        return False  # nothing a reviewer judges changed (a description, a tag)
    assessment = current_assessment(subject)
    if request.state == ApprovalRequest.State.DRAFT:
        request.bound_facts, request.facts_fingerprint = reviewed.facts, reviewed.fingerprint
        request.tier, request.risk, request.policy_snapshot = (
            assessment["tier"],
            assessment,
            policy_snapshot(assessment["tier"]),
        )
        request.round_snapshots = [{**request.round_snapshots[-1], "facts": reviewed.facts, "risk": assessment}]
        request.save(
            update_fields=["bound_facts", "facts_fingerprint", "tier", "risk", "policy_snapshot", "round_snapshots"]
        )
        return False
    start_new_round(request, subject, reviewed, assessment, changed_by=changed_by)
    return True


def start_new_round(
    request: ApprovalRequest,
    subject: Subject,
    reviewed: ReviewedFacts,
    assessment: dict[str, Any],
    *,
    changed_by: User | None,
) -> None:
    """Send a locked open request back to checks on the subject's new facts, as round N+1."""
    now = timezone.now()
    changes = fingerprints.facts_diff(request.bound_facts, reviewed.facts)
    before = {"state": request.state, "round": request.round, "tier": request.tier}
    # The old round's unfinished checks will never count; close them so no beat sends them again.
    CheckRun.objects.filter(
        request=request, round=request.round, status__in=[CheckRun.Status.PENDING, CheckRun.Status.RUNNING]
    ).update(
        status=CheckRun.Status.ERROR,
        summary=f"Not finished: the facts changed and round {request.round + 1} started.",
        lease_until=None,
        finished_at=now,
    )
    request.round += 1
    request.state = ApprovalRequest.State.CHECKING
    request.current_stage = 0
    request.current_role = ""
    request.due_at = None
    request.reminded_at = None
    request.escalation_level = 0
    request.tier = assessment["tier"]
    request.risk = assessment
    request.policy_snapshot = policy_snapshot(assessment["tier"])
    request.bound_facts = reviewed.facts
    request.facts_fingerprint = reviewed.fingerprint
    request.submitted_at = now
    request.round_snapshots = [
        *request.round_snapshots,
        {
            "round": request.round,
            "submitted_at": now.isoformat(),
            "facts": reviewed.facts,
            "risk": assessment,
            "reason": "facts_changed",
            "changed_by": _user_label(changed_by),
            "changes": changes,
        },
    ]
    request.save()
    _create_checks(request, subject)
    audit_record(
        action="approvals.request.facts_changed",
        target=request,
        changes={
            "state": {"before": before["state"], "after": request.state},
            "round": {"before": before["round"], "after": request.round},
            "tier": {"before": before["tier"], "after": request.tier},
            "facts_fingerprint": reviewed.fingerprint,
            "changed": dict(list(changes.items())[:MAX_CHANGES_IN_AUDIT]),
            "by": _user_label(changed_by),
        },
    )
    changed_names = ", ".join(sorted(changes)[:10])
    notifications.notify_requester(
        request,
        "facts_changed",
        comment=f"The facts under review changed ({changed_names}); round {request.round} re-runs the checks "
        "and earlier approvals of this request no longer count.",
    )


def reopen_if_riskier(*, subject: Subject, changed_by: Any = None) -> ApprovalRequest | None:
    """An approved subject whose tier rose above the tier of its last approval, or a tool that gained a
    capability since, gets a re-review request (unless one is open). A tool whose tier rose is taken off the
    registry until the re-review approves it again."""
    key = _subject_key(subject)
    approved = (
        ApprovalRequest.objects.filter(subject_key=key, state=ApprovalRequest.State.APPROVED)
        .select_related("requester")
        .order_by("-decided_at")
        .first()
    )
    if approved is None:
        return None
    assessment = current_assessment(subject)
    riskier = TIER_RANK[assessment["tier"]] > TIER_RANK[approved.tier]
    gained: set[str] = set()
    if subject.grant is None and subject.tool is not None and approved.facts_fingerprint:
        # Facts recorded before fingerprints existed name no capabilities: only the tier counts for them.
        gained = fingerprints.capability_names(reviewed_facts(subject).facts) - fingerprints.capability_names(
            approved.bound_facts
        )
    if not riskier and not gained:
        return None
    if ApprovalRequest.objects.filter(subject_key=key, state__in=OPEN_STATES).exists():
        return None
    requester = (
        changed_by if changed_by is not None and getattr(changed_by, "is_authenticated", False) else approved.requester
    )
    reasons = []
    if riskier:
        reasons.append(f"Tier rose from {approved.tier} to {assessment['tier']}.")
    if gained:
        reasons.append(f"New capabilities since the approval: {', '.join(sorted(gained))}.")
    try:
        with transaction.atomic():
            request = _submit_locked(
                requester,
                ApprovalRequest.Kind.RE_REVIEW,
                subject,
                _owning_team_id(subject),
                " ".join(reasons),
                False,
                approved,
            )
            if riskier and subject.grant is None and subject.tool is not None:
                catalog.tool_set_status(
                    tool=subject.tool,
                    status=Tool.Status.PENDING_REVIEW,
                    reason=f"re-review #{request.pk}: tier rose from {approved.tier} to {assessment['tier']}",
                )
    except IntegrityError:
        return None
    return request
