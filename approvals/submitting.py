"""Submitting a request: a new submission, a draft sent on, a resubmission after changes were asked for, and
"request a grant, then submit it" as one atomic action."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, Value, prefetch_related_objects
from django.utils import timezone

from approvals.checks import Subject, checks_for
from approvals.decisions import REQUESTER_CANNOT_ATTEST, _attest_on_submit
from approvals.models import OPEN_STATES, ApprovalRequest, CheckRun
from approvals.policies import policy_snapshot
from approvals.services import (
    MAX_COMMENT,
    ApprovalConflict,
    ApprovalError,
    ApprovalPermissionError,
    _is_maintainer,
    _locked,
    _owning_team_id,
    _subject_key,
    _title,
    current_assessment,
    reviewed_facts,
    subject_of,
)
from catalog import services as catalog
from catalog.models import Agent, Team, Tool, ToolGrant
from catalog.teams import maintained_by
from portal.audit import audit_deferred, audit_record
from portal.roles import (
    user_is_platform_admin,
)
from portal.types import User


def request_submit(
    *,
    actor: User,
    kind: str,
    agent: Agent | None = None,
    tool: Tool | None = None,
    grant: ToolGrant | None = None,
    justification: str = "",
    attest: bool = False,
    previous: ApprovalRequest | None = None,
    check_permission: bool = True,
    draft: bool = False,
    proposed: dict[str, Any] | None = None,
) -> ApprovalRequest:
    """Open a request and start its checks, or keep it as a draft (`draft=True`) to submit later. `proposed`: the
    agent's facts an autonomy change asks for ({field: {"before", "after"}}; see autonomy_change_submit)."""
    if kind not in ApprovalRequest.Kind.values:
        raise ApprovalError({"kind": f"must be one of {', '.join(ApprovalRequest.Kind.values)}."})
    if sum(x is not None for x in (agent, tool, grant)) != 1:
        raise ApprovalError({"subject": "give exactly one of agent, tool or grant."})
    if len(justification) > MAX_COMMENT:
        raise ApprovalError({"justification": f"is {len(justification)} characters; at most {MAX_COMMENT}."})
    expected: dict[str, bool] = {
        ApprovalRequest.Kind.AGENT_ONBOARDING: agent is not None,
        ApprovalRequest.Kind.TOOL_ONBOARDING: tool is not None,
        ApprovalRequest.Kind.TOOL_GRANT: grant is not None,
        ApprovalRequest.Kind.AUTONOMY_CHANGE: agent is not None and bool(proposed),
    }
    if kind in expected and not expected[kind]:
        subject_name = {
            "agent_onboarding": "agent",
            "tool_onboarding": "tool",
            "tool_grant": "grant",
            "autonomy_change": "change of an agent's facts",
        }[kind]
        raise ApprovalError({"subject": f"a {kind.replace('_', ' ')} request is about a {subject_name}."})
    if check_permission and kind in (
        ApprovalRequest.Kind.RECERTIFICATION,
        ApprovalRequest.Kind.RE_REVIEW,
        ApprovalRequest.Kind.AUTONOMY_CHANGE,
    ):
        raise ApprovalError(
            {
                "kind": "recertification and re-review requests are opened by the portal itself; an autonomy change "
                "by changing the agent's autonomy level."
            }
        )
    if kind == ApprovalRequest.Kind.TOOL_GRANT and grant is not None and grant.is_active:
        expiry = f" until {grant.expires_at:%Y-%m-%d}" if grant.expires_at else ""
        raise ApprovalConflict(f"This grant is already approved{expiry}; recertification renews it.")
    subject = Subject(
        agent=grant.agent if grant else agent, tool=grant.tool if grant else tool, grant=grant, proposed=proposed or {}
    )
    if subject.tool is not None:  # the risk and the reviewed facts both read them: once
        prefetch_related_objects([subject.tool], "capabilities")
    team, actor_maintains = _owning_team(subject, actor)
    if check_permission and not (user_is_platform_admin(actor) or actor_maintains):
        raise ApprovalPermissionError(
            f"Only maintainers of team {team.name} (or platform admins) can submit this request."
        )
    team_id = team.pk
    try:
        with transaction.atomic(), audit_deferred():
            return _submit_locked(actor, kind, subject, team_id, justification, attest, previous, draft=draft)
    except IntegrityError as exc:
        open_request = ApprovalRequest.objects.filter(
            subject_key=_subject_key(subject), kind=kind, state__in=OPEN_STATES
        ).first()
        raise ApprovalConflict(
            f"An open {kind.replace('_', ' ')} request for this already exists"
            + (f" (#{open_request.pk})." if open_request else ".")
        ) from exc


def _owning_team(subject: Subject, actor: User) -> tuple[Team, bool]:
    """The subject's owning team and whether `actor` maintains it, in one query. The owning entity keeps the team
    as its owner: the reviewed facts name it, and would otherwise load it once more."""
    maintains: Exists | Value = Value(False)
    if actor is not None and actor.is_authenticated:
        maintains = maintained_by(actor.pk)
    team: Any = Team.objects.annotate(actor_maintains=maintains).get(pk=_owning_team_id(subject))
    owned = subject.agent if subject.grant is not None else subject.entity
    if owned is not None:
        owned.owner = team
    return team, bool(team.actor_maintains)


def _submit_locked(
    actor: Any,
    kind: str,
    subject: Subject,
    team_id: int,
    justification: str,
    attest: bool,
    previous: ApprovalRequest | None,
    *,
    draft: bool = False,
) -> ApprovalRequest:
    if attest:
        # The submitter is the requester: their word alone never completes a request (see _attestation_refusal).
        raise ApprovalError({"attest": REQUESTER_CANNOT_ATTEST})
    now = timezone.now()
    assessment = current_assessment(subject)
    tier = assessment["tier"]
    reviewed = reviewed_facts(subject)
    facts = reviewed.facts
    request = ApprovalRequest.objects.create(
        kind=kind,
        state=ApprovalRequest.State.DRAFT if draft else ApprovalRequest.State.CHECKING,
        agent=subject.agent if subject.grant is None and subject.tool is None else None,
        tool=subject.tool if subject.grant is None else None,
        grant=subject.grant,
        subject_key=_subject_key(subject),
        title=_title(kind, subject)[:300],
        requester=actor,
        owning_team_id=team_id,
        tier=tier,
        risk=assessment,
        bound_facts=facts,
        facts_fingerprint=reviewed.fingerprint,
        policy_snapshot=policy_snapshot(tier),
        proposed_changes=subject.proposed,
        justification=justification,
        previous=previous,
        submitted_at=now,
        round_snapshots=[{"round": 1, "submitted_at": now.isoformat(), "facts": facts, "risk": assessment}],
    )
    if draft:
        request.submitted_at = None
        request.save(update_fields=["submitted_at"])
        audit_record(
            action="approvals.request.drafted",
            target=request,
            changes={"kind": kind, "subject": request.subject_key, "tier": tier},
        )
        return request
    _mark_subject_in_review(kind, subject)
    _create_checks(request, subject)
    changes: dict[str, Any] = {
        "kind": kind,
        "subject": request.subject_key,
        "tier": tier,
        "attested": False,
        "round": 1,
    }
    if subject.proposed:
        changes["proposed"] = subject.proposed
    audit_record(action="approvals.request.submitted", target=request, changes=changes)
    return request


def _mark_subject_in_review(kind: str, subject: Subject) -> None:
    onboarding_agent = kind == ApprovalRequest.Kind.AGENT_ONBOARDING and subject.agent is not None
    if onboarding_agent and subject.agent.status == Agent.Status.DRAFT:  # type: ignore[union-attr]
        catalog.agent_set_status(agent=subject.agent, status=Agent.Status.ONBOARDING, reason="onboarding requested")  # type: ignore[arg-type]
    # A re-review takes an approved tool off the registry only when its tier rose (approvals.rounds decides).
    reviewing_tool = kind == ApprovalRequest.Kind.TOOL_ONBOARDING
    if (
        reviewing_tool
        and subject.grant is None
        and subject.tool is not None
        and subject.tool.status != Tool.Status.PENDING_REVIEW
    ):
        reason = f"{kind.replace('_', ' ')} requested"
        catalog.tool_set_status(tool=subject.tool, status=Tool.Status.PENDING_REVIEW, reason=reason)


def _create_checks(request: ApprovalRequest, subject: Subject) -> None:
    names = checks_for(request.kind, subject)
    CheckRun.objects.bulk_create([CheckRun(request=request, round=request.round, name=name) for name in names])
    request_id, round_number = request.pk, request.round

    def enqueue() -> None:
        from approvals.tasks import run_checks

        run_checks.delay(request_id, round_number)

    transaction.on_commit(enqueue)


def request_submit_draft(*, actor: User, request_id: int, attest: bool = False) -> ApprovalRequest:
    with transaction.atomic():
        request = _locked(request_id)
        if request.requester_id != actor.pk and not _is_maintainer(actor, request.owning_team):
            raise ApprovalPermissionError("Only the requester or the owning team's maintainers can submit this draft.")
        if request.state != ApprovalRequest.State.DRAFT:
            raise ApprovalConflict(f"Request #{request.pk} is {request.get_state_display()}, not a draft.")
        if attest:
            _attest_on_submit(actor, request)
        subject = subject_of(request)
        now = timezone.now()
        request.state = ApprovalRequest.State.CHECKING
        request.submitted_at = now
        if attest:
            request.attested_by, request.attested_at = actor, now
        request.save()
        _mark_subject_in_review(request.kind, subject)
        _create_checks(request, subject)
        audit_record(
            action="approvals.request.submitted",
            target=request,
            changes={"state": {"before": "draft", "after": "checking"}},
        )
        return request


def request_resubmit(
    *, actor: User, request_id: int, justification: str | None = None, attest: bool = False
) -> ApprovalRequest:
    with transaction.atomic():
        request = _locked(request_id)
        if (
            request.requester_id != actor.pk
            and not _is_maintainer(actor, request.owning_team)
            and not user_is_platform_admin(actor)
        ):
            raise ApprovalPermissionError(
                "Only the requester, the owning team's maintainers or a platform admin can resubmit."
            )
        if request.state != ApprovalRequest.State.CHANGES_REQUESTED:
            raise ApprovalConflict(
                f"Request #{request.pk} is {request.get_state_display()}; only a request with changes requested can be resubmitted."
            )
        if attest:
            _attest_on_submit(actor, request)
        subject = subject_of(request)
        assessment = current_assessment(subject)
        reviewed = reviewed_facts(subject)
        facts = reviewed.facts
        now = timezone.now()
        request.round += 1
        request.state = ApprovalRequest.State.CHECKING
        request.current_stage = 0
        request.current_role = ""
        request.tier = assessment["tier"]
        request.risk = assessment
        request.bound_facts = facts
        request.facts_fingerprint = reviewed.fingerprint
        request.policy_snapshot = policy_snapshot(assessment["tier"])
        request.submitted_at = now
        if justification is not None:
            if len(justification) > MAX_COMMENT:
                raise ApprovalError({"justification": f"is {len(justification)} characters; at most {MAX_COMMENT}."})
            request.justification = justification
        if attest:
            request.attested_by, request.attested_at = actor, now
        request.round_snapshots = [
            *request.round_snapshots,
            {"round": request.round, "submitted_at": now.isoformat(), "facts": facts, "risk": assessment},
        ]
        request.save()
        _create_checks(request, subject)
        audit_record(
            action="approvals.request.resubmitted",
            target=request,
            changes={"round": request.round, "tier": request.tier},
        )
        return request


@transaction.atomic
def grant_request_submit(
    *,
    actor: User,
    agent: Agent,
    tool: Tool,
    environment: str = "production",
    capability_names: list[str] | None = None,
    justification: str = "",
    attest: bool = False,
) -> ApprovalRequest:
    """Request a grant (or take the one already requested) and submit it for approval: both or neither.

    The one path for the UI, the API, the agents' MCP server and the demo. Never approves: an open request for the
    grant, or a grant already approved, is an ApprovalConflict naming it."""
    grant, _ = catalog.grant_request(
        actor=actor, agent=agent, tool=tool, environment=environment, capability_names=capability_names
    )
    return request_submit(
        actor=actor,
        kind=ApprovalRequest.Kind.TOOL_GRANT,
        grant=grant,
        justification=justification,
        attest=attest,
    )


def autonomy_change_submit(
    *, actor: User, agent: Agent, current: int | None, requested: int, justification: str = ""
) -> tuple[ApprovalRequest, bool]:
    """File the request that holds a raise of `agent`'s autonomy to `requested` until it is approved (the catalog
    keeps `current` meanwhile); (request, True). One such request per agent is open at a time: asking again for the
    level it asks for answers it, (request, False), so a re-import or a retried call files nothing twice; asking
    for another level is an ApprovalConflict naming it. The caller (catalog.services.agent_update, through
    runtime.autonomy) checked that `actor` may edit the agent and holds the agent's row lock."""
    open_request = ApprovalRequest.objects.filter(
        agent=agent, kind=ApprovalRequest.Kind.AUTONOMY_CHANGE, state__in=OPEN_STATES
    ).first()
    if open_request is not None:
        asked = open_request.proposed_changes.get("autonomy_level", {}).get("after")
        if asked == requested:
            return open_request, False
        raise ApprovalConflict(
            f"Autonomy {asked} is already requested for {agent.name} in request #{open_request.pk} "
            f"({open_request.get_state_display()}); withdraw it or wait for its decision before asking for "
            f"autonomy {requested}."
        )
    request = request_submit(
        actor=actor,
        kind=ApprovalRequest.Kind.AUTONOMY_CHANGE,
        agent=agent,
        justification=justification
        or f"Raise autonomy from {current or 'unknown'} to {requested}; runtime evidence is checked.",
        check_permission=False,
        proposed={"autonomy_level": {"before": current, "after": requested}},
    )
    return request, True
