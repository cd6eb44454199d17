"""Human decisions on a request: approve, reject or ask for changes at a stage, the owner's attestation, the
requester's withdrawal, and the terminal transitions they lead to."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import notifications
from approvals.checks import Subject
from approvals.models import OPEN_STATES, ApprovalRequest, Decision
from approvals.services import (
    MAX_COMMENT,
    OWNER_ATTESTATION_ROLE,
    ApprovalConflict,
    ApprovalError,
    ApprovalPermissionError,
    _is_maintainer,
    _locked,
    _stage_due,
    _system,
    _user_label,
    subject_of,
)
from catalog import services as catalog
from catalog.models import Agent, TeamMembership, Tool, ToolGrant
from portal.audit import audit_deferred, audit_record
from portal.context import acting_as, actor_for_user, current_actor
from portal.roles import (
    SECURITY_REVIEWER,
    user_has_role,
    user_is_platform_admin,
)
from portal.types import User


def _enter_stage(request: ApprovalRequest, index: int, stage: dict[str, Any] | None = None) -> None:
    now = timezone.now()
    stage = stage or request.stages[index]
    if stage["role"] == OWNER_ATTESTATION_ROLE and not any(s["role"] == OWNER_ATTESTATION_ROLE for s in request.stages):
        request.policy_snapshot = {**request.policy_snapshot, "stages": [stage]}
    before = request.state
    request.state = ApprovalRequest.State.IN_REVIEW
    request.current_stage = index
    request.current_role = stage["role"]
    request.due_at = _stage_due(stage, now)
    request.reminded_at = None
    request.escalation_level = 0
    request.save()
    audit_record(
        action="approvals.request.stage_entered",
        target=request,
        changes={
            "state": {"before": before, "after": request.state},
            "stage": stage["name"],
            "role": stage["role"],
            "due_at": request.due_at,
        },
    )
    notifications.notify_stage(request, stage)


def stale_facts_reason(request: ApprovalRequest) -> str:
    """The 409 message for a decision made on facts that are no longer the subject's."""
    changed = resubmission_changes(request) if request.round > 1 else {}
    what = ", ".join(sorted(changed)[:8]) or "the reviewed facts"
    return (
        f"the facts changed since you loaded this request: {what} changed and round {request.round} started "
        f"({request.get_state_display()}); reload request #{request.pk} and review the new facts."
    )


ALREADY_DECIDED = "You already decided on this request in this round; one person counts once."


def decision_refusal(
    user: User | AnonymousUser, request: ApprovalRequest, *, already_decided: bool | None = None
) -> str | None:
    """Why this user may not decide the request's current stage, or None. Used by the queue and by decide.
    `already_decided`: whether the user decided in this round, when the caller read it already."""
    if not user.is_authenticated:
        return "You must be signed in."
    if request.state != ApprovalRequest.State.IN_REVIEW:
        return f"This request is {request.get_state_display()}; nothing to decide."
    stage = request.stage
    if stage is None:
        return "This request has no open stage."
    if stage["role"] == OWNER_ATTESTATION_ROLE:
        return _attestation_refusal(user, request)
    if user.pk == request.requester_id:
        return "Nobody approves their own request."
    if not user_has_role(user, stage["role"]):
        return f"The '{stage['name']}' stage needs the {stage['role']} role."
    if already_decided is None:
        already_decided = request.decisions.filter(round=request.round, reviewer=user).exists()
    if already_decided:
        return ALREADY_DECIDED
    if (
        request.policy_snapshot.get("exclude_owning_team")
        and TeamMembership.objects.filter(team=request.owning_team, user=user).exists()
    ):
        return f"At {request.tier} tier nobody from the owning team ({request.owning_team.name}) approves."
    return None


REQUESTER_CANNOT_ATTEST = (
    "the requester cannot attest their own request: once the checks pass, a maintainer of the owning team who is "
    "not the requester attests it (a platform admin or security reviewer when the requester is its only maintainer)."
)


def _attestation_refusal(user: User | AnonymousUser, request: ApprovalRequest) -> str | None:
    """Why this user may not attest the request, or None. Attesting is the owner vouching for the descriptor, and no
    request is completed by its requester alone: a maintainer of the owning team other than the requester attests;
    when the requester is the team's only maintainer, a platform admin or a security reviewer attests instead."""
    team = request.owning_team
    if user.pk == request.requester_id:
        return "Nobody attests their own request. " + REQUESTER_CANNOT_ATTEST[0].upper() + REQUESTER_CANNOT_ATTEST[1:]
    if _is_maintainer(user, team):
        return None
    other_maintainers = (
        TeamMembership.objects.filter(team=team, role=TeamMembership.Role.MAINTAINER, user__is_active=True)
        .exclude(user_id=request.requester_id)
        .exists()
    )
    if other_maintainers:
        return f"Only maintainers of team {team.name} other than the requester can attest."
    if user_is_platform_admin(user) or user_has_role(user, SECURITY_REVIEWER):
        return None
    return (
        f"Team {team.name} has no maintainer besides the requester, so a platform admin or a security reviewer attests."
    )


def _attest_on_submit(actor: User, request: ApprovalRequest) -> None:
    """`attest` on submitting a draft or resubmitting: refused for the requester and for anyone who could not
    attest at the attestation stage."""
    if actor.pk == request.requester_id:
        raise ApprovalError({"attest": REQUESTER_CANNOT_ATTEST})
    refusal = _attestation_refusal(actor, request)
    if refusal is not None:
        raise ApprovalPermissionError(refusal)


def request_decide(
    *,
    actor: User,
    request_id: int,
    outcome: str,
    comment: str = "",
    stage_index: int | None = None,
    facts_fingerprint: str | None = None,
    subject: Subject | None = None,
    subject_ref: str = "",
) -> ApprovalRequest:
    """Decide the current stage. `facts_fingerprint` is the fingerprint of the facts the reviewer saw (the review
    page and the API send it; both require it to approve): when the subject's facts changed since, the decision is
    refused under the row lock, so no approval is ever recorded on facts other than the current ones. None is for
    callers that decide on what they just read under the same lock (the portal's own demo and tests). `subject`, `subject_ref`:
    the request's subject as the caller loaded it, or as the form reviewed sends it back (see services._locked)."""
    errors: dict[str, list[str] | str] = {}
    if outcome not in Decision.Outcome.values:
        errors["outcome"] = f"must be one of {', '.join(Decision.Outcome.values)}."
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        errors["comment"] = f"is {len(comment)} characters; at most {MAX_COMMENT} are accepted."
    elif outcome in (Decision.Outcome.REJECT, Decision.Outcome.REQUEST_CHANGES) and not comment:
        errors["comment"] = "is required when rejecting or requesting changes: tell the requester why."
    if errors:
        raise ApprovalError(errors)
    refusal: str | None = None
    decided_round = 0  # the round read under the lock (rounds start at 1)
    try:
        with transaction.atomic(), audit_deferred():
            request = _locked(request_id, subject=subject, subject_ref=subject_ref)
            decided_round = request.round
            if facts_fingerprint is not None and facts_fingerprint != request.facts_fingerprint:
                raise ApprovalConflict(stale_facts_reason(request))
            if request.state != ApprovalRequest.State.IN_REVIEW:
                raise ApprovalConflict(
                    f"Request #{request.pk} is {request.get_state_display()}; it was decided or withdrawn meanwhile."
                )
            if stage_index is not None and stage_index != request.current_stage:
                raise ApprovalConflict("That stage was decided meanwhile; reload to see the request's current stage.")
            # Whether this person decided in this round already is answered by the database (one decision per
            # person per round) when the decision is written: no query beforehand.
            refusal = decision_refusal(actor, request, already_decided=False)
            if refusal is not None:
                raise ApprovalPermissionError(refusal)
            return _decide_locked(actor, request, outcome, comment)
    except ApprovalPermissionError:
        _audit_refusal(request_id, outcome, refusal)
        raise
    except IntegrityError as exc:
        # The transaction is rolled back; which rule refused the decision is read after it.
        if Decision.objects.filter(request_id=request_id, round=decided_round, reviewer=actor).exists():
            _audit_refusal(request_id, outcome, ALREADY_DECIDED)
            raise ApprovalPermissionError(ALREADY_DECIDED) from exc
        raise ApprovalConflict(
            "This decision was already recorded (double submit or another reviewer); reload."
        ) from exc


def _audit_refusal(request_id: int, outcome: str, reason: str | None) -> None:
    with transaction.atomic():
        audit_record(
            action="approvals.decision.refused",
            object_type="approvals.approvalrequest",
            object_id=request_id,
            changes={"outcome": outcome, "reason": reason},
        )


def _decide_locked(actor: User, request: ApprovalRequest, outcome: str, comment: str) -> ApprovalRequest:
    stage = request.stage
    assert stage is not None
    if stage["role"] == OWNER_ATTESTATION_ROLE:
        if actor.pk == request.requester_id:  # decision_refusal says so first; this keeps it true for every caller
            raise ApprovalPermissionError("Nobody attests their own request.")
        if outcome != Decision.Outcome.APPROVE:
            raise ApprovalError({"outcome": "the owner attests (approve) or withdraws the request."})
        request.attested_by = actor
        request.attested_at = timezone.now()
        request.save(update_fields=["attested_by", "attested_at"])
        audit_record(action="approvals.request.attested", target=request, changes={"by": _user_label(actor)})
        _approve(request, approver=actor)
        return request
    # No savepoint: a duplicate (double submit, another reviewer, the same person twice in a round) fails the whole
    # transition, and request_decide turns the IntegrityError into its answer (409, or 403 for the same person).
    Decision.objects.create(
        request=request,
        round=request.round,
        stage_index=request.current_stage,
        stage_name=stage["name"],
        reviewer=actor,
        facts_fingerprint=request.facts_fingerprint,
        outcome=outcome,
        comment=comment,
    )
    audit_record(
        action=f"approvals.decision.{outcome}",
        target=request,
        changes={"stage": stage["name"], "round": request.round, "comment": comment[:500]},
    )
    if outcome == Decision.Outcome.APPROVE:
        if request.current_stage + 1 < len(request.stages):
            _enter_stage(request, request.current_stage + 1)
        else:
            _approve(request, approver=actor)
    elif outcome == Decision.Outcome.REJECT:
        _reject(request, comment=comment, by=actor)
    else:
        _to_changes_requested(request, reasons=[comment], by=_user_label(actor))
    return request


def request_attest(*, actor: User, request_id: int) -> ApprovalRequest:
    """Attest a request that waits for the owner's attestation (see _attestation_refusal for who may). Any other
    stage is decided with request_decide, never approved through here."""
    waiting = ApprovalRequest.objects.filter(pk=request_id).values_list("state", "current_role").first()
    if waiting is None:
        raise ApprovalConflict(f"Request #{request_id} does not exist.")
    if waiting != (ApprovalRequest.State.IN_REVIEW, OWNER_ATTESTATION_ROLE):
        raise ApprovalConflict(f"Request #{request_id} is not waiting for the owner's attestation.")
    return request_decide(actor=actor, request_id=request_id, outcome=Decision.Outcome.APPROVE)


def _finish(request: ApprovalRequest, state: str, **extra: Any) -> str:
    before = request.state
    request.state = state
    request.decided_at = request.updated_at = timezone.now()
    request.due_at = None
    request.current_role = ""
    for key, value in extra.items():
        setattr(request, key, value)
    # Only what finishing changes: the JSON snapshots stay as they are (and are not re-sent).
    fields = ["state", "decided_at", "due_at", "current_role", "updated_at", *extra]
    ApprovalRequest.objects.filter(pk=request.pk).update(**{name: getattr(request, name) for name in fields})
    return before


def _status_subject(request: ApprovalRequest) -> Subject:
    """The subject for a status change only. A tool's or agent's row as _locked locked it (its status is current
    under the lock, and the status change writes it without reading it again); a grant as a reference without a
    query (grant_set_status locks and reloads it). A request that was not locked here loads its agent or tool."""
    if request.grant_id:
        return Subject(agent=None, tool=None, grant=ToolGrant(pk=request.grant_id))
    if request.locked_tool is not None or request.locked_agent is not None:
        return Subject(agent=request.locked_agent, tool=request.locked_tool, grant=None)
    return subject_of(request)


def _approve(request: ApprovalRequest, *, approver: User | None) -> None:
    validity = timedelta(days=int(request.policy_snapshot.get("validity_days") or 365))
    expires_at = timezone.now() + validity
    before = _finish(request, ApprovalRequest.State.APPROVED, approval_expires_at=expires_at)
    subject = _status_subject(request)
    locked = request.locked_tool is not None or request.locked_agent is not None  # _status_subject's row
    reason = f"approval request #{request.pk}"
    if request.kind == ApprovalRequest.Kind.AUTONOMY_CHANGE:
        _apply_proposed_changes(request, approver=approver)
    elif subject.grant is not None:
        catalog.grant_set_status(
            grant=subject.grant, status=ToolGrant.Status.APPROVED, expires_at=expires_at, reason=reason
        )
    elif subject.tool is not None:
        catalog.tool_set_status(tool=subject.tool, status=Tool.Status.APPROVED, reason=reason, locked=locked)
    elif subject.agent is not None and subject.agent.status in (
        Agent.Status.DRAFT,
        Agent.Status.ONBOARDING,
        Agent.Status.SUSPENDED,
    ):
        catalog.agent_set_status(agent=subject.agent, status=Agent.Status.ACTIVE, reason=reason, locked=locked)
    audit_record(
        action="approvals.request.approved",
        target=request,
        changes={
            "state": {"before": before, "after": "approved"},
            "by": _user_label(approver),
            "expires_at": expires_at,
            "tier": request.tier,
        },
    )
    notifications.notify_requester(request, "approved")


def _apply_proposed_changes(request: ApprovalRequest, *, approver: User | None) -> None:
    """Write what an approved autonomy change asked for through the catalog's agent update (re-scored, told to
    listeners like any change of facts, audited). The actor is the final approver (the system when the policy
    approved it after the checks): their approval is what makes the change happen; the requester is on the request,
    which the catalog's audit event names (`approved_in`)."""
    data = {name: change["after"] for name, change in request.proposed_changes.items()}
    agent = Agent.objects.select_related("owner").get(pk=cast(int, request.agent_id))
    actor = current_actor()
    if approver is None:
        actor = _system()
    elif actor.user_id != approver.pk:  # keep the approver's own actor (a token's included) when it is theirs
        actor = actor_for_user(approver) or _system()
    with acting_as(actor):
        catalog.agent_update(actor=approver, agent=agent, data=data, check_permission=False, approved_in=request.pk)


def _reject(request: ApprovalRequest, *, comment: str, by: User) -> None:
    before = _finish(request, ApprovalRequest.State.REJECTED)
    subject = _status_subject(request)
    locked = request.locked_tool is not None or request.locked_agent is not None  # _status_subject's row
    reason = f"rejected in approval request #{request.pk}"
    if subject.grant is not None:
        catalog.grant_set_status(grant=subject.grant, status=ToolGrant.Status.DENIED, reason=reason)
    elif subject.tool is not None:
        catalog.tool_set_status(tool=subject.tool, status=Tool.Status.REJECTED, reason=reason, locked=locked)
    elif (
        subject.agent is not None
        and subject.agent.status == Agent.Status.ONBOARDING
        and request.kind != ApprovalRequest.Kind.AUTONOMY_CHANGE
    ):
        catalog.agent_set_status(agent=subject.agent, status=Agent.Status.DRAFT, reason=reason, locked=locked)
    audit_record(
        action="approvals.request.rejected",
        target=request,
        changes={"state": {"before": before, "after": "rejected"}, "by": _user_label(by), "comment": comment[:500]},
    )
    notifications.notify_requester(request, "rejected", comment=comment)


def _to_changes_requested(request: ApprovalRequest, *, reasons: list[str], by: str) -> None:
    before = request.state
    request.state = ApprovalRequest.State.CHANGES_REQUESTED
    request.due_at = None
    request.current_role = ""
    request.save()
    audit_record(
        action="approvals.request.changes_requested",
        target=request,
        changes={"state": {"before": before, "after": request.state}, "by": by, "reasons": reasons},
    )
    notifications.notify_requester(request, "changes_requested", comment="\n".join(reasons))


def request_withdraw(*, actor: User, request_id: int) -> ApprovalRequest:
    with transaction.atomic():
        request = _locked(request_id)
        if request.requester_id != actor.pk and not user_is_platform_admin(actor):
            raise ApprovalPermissionError("Only the requester (or a platform admin) can withdraw a request.")
        if request.state not in OPEN_STATES:
            raise ApprovalConflict(
                f"Request #{request.pk} is {request.get_state_display()}; it can no longer be withdrawn."
            )
        before = _finish(request, ApprovalRequest.State.WITHDRAWN)
        subject = subject_of(request)
        if subject.grant is not None and subject.grant.status == ToolGrant.Status.REQUESTED:
            catalog.grant_set_status(
                grant=subject.grant, status=ToolGrant.Status.DENIED, reason=f"request #{request.pk} withdrawn"
            )
        elif subject.grant is None and subject.tool is not None and subject.tool.status == Tool.Status.PENDING_REVIEW:
            catalog.tool_set_status(
                tool=subject.tool, status=Tool.Status.DRAFT, reason=f"request #{request.pk} withdrawn"
            )
        elif (
            subject.agent is not None
            and subject.grant is None
            and subject.agent.status == Agent.Status.ONBOARDING
            and request.kind != ApprovalRequest.Kind.AUTONOMY_CHANGE
        ):
            catalog.agent_set_status(
                agent=subject.agent, status=Agent.Status.DRAFT, reason=f"request #{request.pk} withdrawn"
            )
        audit_record(
            action="approvals.request.withdrawn",
            target=request,
            changes={"state": {"before": before, "after": "withdrawn"}},
        )
        return request


def resubmission_changes(request: ApprovalRequest) -> dict[str, dict[str, Any]]:
    """What changed between the last two rounds' facts and tier (for the request page)."""
    snapshots = request.round_snapshots
    if len(snapshots) < 2:
        return {}
    before, after = snapshots[-2], snapshots[-1]
    if "changes" in after:  # a round started by a change of facts stored what changed
        return dict(after["changes"])
    changes = {
        key: {"before": before["facts"].get(key), "after": after["facts"].get(key)}
        for key in sorted(set(before["facts"]) | set(after["facts"]))
        if before["facts"].get(key) != after["facts"].get(key)
    }
    if before["risk"].get("tier") != after["risk"].get("tier"):
        changes["tier"] = {"before": before["risk"].get("tier"), "after": after["risk"].get("tier")}
    return changes
