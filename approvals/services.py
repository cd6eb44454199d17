"""Approval workflows. Every transition is one function here: it locks the request row, re-checks its guard
after the lock, writes, audits, and enqueues follow-up tasks only after commit. A lost race is an
ApprovalConflict (409), never a duplicate.

State machine (per round):  checking -> in_review -> approved | rejected | changes_requested
                            changes_requested -> checking (resubmit, next round)
                            any open state -> withdrawn (requester) | expired (beat, stale)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q, prefetch_related_objects
from django.utils import timezone

from approvals import notifications
from approvals.checks import CHECK_TITLES, CheckResult, CheckTransientError, Subject, checks_for, run_round
from approvals.models import OPEN_STATES, ApprovalPolicy, ApprovalRequest, CheckRun, Decision, PolicyStage
from catalog import facts as catalog_facts
from catalog import risk
from catalog import services as catalog
from catalog.models import Agent, Team, TeamMembership, Tool, ToolGrant
from portal.audit import audit_deferred, audit_record
from portal.context import Actor, acting_as, actor_for_user
from portal.errors import Conflict, InvalidInput, PermissionDenied
from portal.net import SafeHttpClient
from portal.roles import (
    BUSINESS_OWNER,
    DATA_OWNER,
    PLATFORM_ADMIN,
    SECURITY_LEAD,
    SECURITY_REVIEWER,
    user_has_role,
    user_is_platform_admin,
)

logger = logging.getLogger(__name__)

OWNER_ATTESTATION_ROLE = "owner-maintainer"
MAX_COMMENT = 10_000


# A check that cannot get an answer is tried this often (with backoff) before it shows as an error.
CHECK_MAX_ATTEMPTS = 4


def _check_lease() -> timedelta:
    return timedelta(seconds=settings.APPROVALS_CHECK_LEASE_SECONDS)


ESCALATION_LEADS = {SECURITY_REVIEWER: SECURITY_LEAD, SECURITY_LEAD: PLATFORM_ADMIN, DATA_OWNER: PLATFORM_ADMIN}
RECERTIFICATION_WINDOW = timedelta(days=14)
REQUEST_MAX_AGE = timedelta(days=30)
TIER_RANK = {tier.value: tier.rank for tier in risk.Tier}

DEFAULT_POLICIES: dict[str, dict[str, Any]] = {
    "low": {
        "auto_approve": True,
        "requires_attestation": True,
        "validity_days": 365,
        "exclude_owning_team": False,
        "description": "Automatic after checks plus the owner's attestation; valid 12 months.",
        "stages": [],
    },
    "medium": {
        "auto_approve": False,
        "requires_attestation": False,
        "validity_days": 365,
        "exclude_owning_team": False,
        "description": "One security reviewer; valid 12 months.",
        "stages": [("Security review", SECURITY_REVIEWER, 48)],
    },
    "high": {
        "auto_approve": False,
        "requires_attestation": False,
        "validity_days": 180,
        "exclude_owning_team": True,
        "description": "A security reviewer and a data owner, two different people; valid 6 months.",
        "stages": [("Security review", SECURITY_REVIEWER, 48), ("Data owner", DATA_OWNER, 72)],
    },
    "critical": {
        "auto_approve": False,
        "requires_attestation": False,
        "validity_days": 90,
        "exclude_owning_team": True,
        "description": "Security lead, data owner and an accountable business owner; valid 90 days.",
        "stages": [
            ("Security lead", SECURITY_LEAD, 24),
            ("Data owner", DATA_OWNER, 48),
            ("Business owner", BUSINESS_OWNER, 48),
        ],
    },
}


class ApprovalError(InvalidInput):
    """Bad input; `errors` maps fields to messages."""


class ApprovalPermissionError(PermissionDenied):
    pass


class ApprovalConflict(Conflict):
    """The request changed meanwhile (another reviewer, a withdrawal, a double submit)."""


# --- policies ------------------------------------------------------------------------------------------------


@transaction.atomic
def policies_seed_defaults() -> None:
    """Create the default policy per tier; existing (possibly edited) policies are left alone."""
    for tier, spec in DEFAULT_POLICIES.items():
        policy, created = ApprovalPolicy.objects.get_or_create(
            tier=tier,
            defaults={
                key: spec[key]
                for key in (
                    "auto_approve",
                    "requires_attestation",
                    "validity_days",
                    "exclude_owning_team",
                    "description",
                )
            },
        )
        if created:
            for order, (name, role, sla) in enumerate(spec["stages"]):
                PolicyStage.objects.create(policy=policy, order=order, name=name, role=role, sla_hours=sla)
            audit_record(
                action="approvals.policy.created",
                target=policy,
                changes={"tier": tier, "stages": [s[1] for s in spec["stages"]]},
            )


def policy_snapshot(tier: str) -> dict[str, Any]:
    """The tier's policy as the request keeps it (later edits do not change open requests). One query: a row
    per stage, or one row with empty stage columns."""
    rows = list(
        ApprovalPolicy.objects.filter(tier=tier)
        .order_by("stages__order")
        .values(
            "auto_approve",
            "requires_attestation",
            "validity_days",
            "exclude_owning_team",
            "stages__name",
            "stages__role",
            "stages__sla_hours",
        )
    )
    if not rows:
        policies_seed_defaults()
        return policy_snapshot(tier)
    first = rows[0]
    return {
        "tier": tier,
        "auto_approve": first["auto_approve"],
        "requires_attestation": first["requires_attestation"],
        "validity_days": first["validity_days"],
        "exclude_owning_team": first["exclude_owning_team"],
        "stages": [
            {"name": row["stages__name"], "role": row["stages__role"], "sla_hours": row["stages__sla_hours"]}
            for row in rows
            if row["stages__role"] is not None
        ],
    }


@transaction.atomic
def policy_update(
    *, actor: AbstractBaseUser, policy: ApprovalPolicy, data: dict[str, Any], stages: list[dict[str, Any]] | None = None
) -> ApprovalPolicy:
    if not user_is_platform_admin(actor):
        raise ApprovalPermissionError("Only platform admins edit approval policies.")
    from django.contrib.auth.models import Group

    errors: dict[str, list[str] | str] = {}
    if "validity_days" in data:
        try:
            if not 1 <= int(data["validity_days"]) <= 730:
                errors["validity_days"] = "must be between 1 and 730 days."
        except (TypeError, ValueError):
            errors["validity_days"] = "must be a whole number of days."
    known_roles = set(Group.objects.values_list("name", flat=True)) | {OWNER_ATTESTATION_ROLE}
    for index, stage in enumerate(stages or []):
        name, role = str(stage.get("name") or ""), str(stage.get("role") or "")
        if not name or not role or len(name) > 100 or len(role) > 80:
            errors[f"stages[{index}]"] = "needs a name (at most 100 characters) and a role (a group, at most 80)."
        elif role not in known_roles:
            errors[f"stages[{index}].role"] = f"{role!r} is not a group; nobody could decide this stage."
        try:
            if not 1 <= int(stage.get("sla_hours") or 0) <= 24 * 30:
                errors[f"stages[{index}].sla_hours"] = "must be between 1 and 720 hours."
        except (TypeError, ValueError):
            errors[f"stages[{index}].sla_hours"] = "must be a whole number of hours."
    if data.get("auto_approve") and stages:
        errors["auto_approve"] = "an automatic policy has no human stages; remove the stages or turn it off."
    auto_approve = bool(data.get("auto_approve", policy.auto_approve))
    stage_count = len(stages) if stages is not None else policy.stages.count()
    if not auto_approve and stage_count == 0:
        # Nobody could ever decide such a request: it would wait in checking for ever.
        errors["stages"] = (
            f"the {policy.tier} tier is not approved automatically, so it needs at least one review stage "
            "(or set auto_approve)."
        )
    if errors:
        raise ApprovalError(errors)
    before = policy_snapshot(policy.tier)
    for key in ("auto_approve", "requires_attestation", "validity_days", "exclude_owning_team", "description"):
        if key in data:
            setattr(policy, key, data[key])
    policy.save()
    if stages is not None:
        policy.stages.all().delete()
        for order, stage in enumerate(stages):
            PolicyStage.objects.create(
                policy=policy, order=order, name=stage["name"], role=stage["role"], sla_hours=int(stage["sla_hours"])
            )
    audit_record(
        action="approvals.policy.updated",
        target=policy,
        changes={"before": before, "after": policy_snapshot(policy.tier)},
    )
    return policy


# --- helpers -------------------------------------------------------------------------------------------------


def subject_of(request: ApprovalRequest, *, with_capabilities: bool = False) -> Subject:
    """The request's agent, tool or grant. `with_capabilities` loads the tool's capabilities in the same go
    (the checks and the risk read them several times). A tool comes without its owner team: nothing here needs
    more of it than its id (the owner check reads the name itself)."""
    if request.grant_id:
        grants = ToolGrant.objects.select_related("agent", "tool", "agent__owner", "tool__owner")
        if with_capabilities:
            grants = grants.prefetch_related("tool__capabilities")
        grant = grants.get(pk=request.grant_id)
        return Subject(agent=grant.agent, tool=grant.tool, grant=grant)
    if request.tool_id:
        tools = Tool.objects.select_related("owner")
        if with_capabilities:
            tools = tools.prefetch_related("capabilities")
        return Subject(agent=None, tool=tools.get(pk=request.tool_id), grant=None)
    return Subject(agent=Agent.objects.select_related("owner").get(pk=request.agent_id), tool=None, grant=None)


def _subject_key(subject: Subject) -> str:
    if subject.grant is not None:
        return f"grant:{subject.grant.pk}"
    if subject.tool is not None:
        return f"tool:{subject.tool.pk}"
    assert subject.agent is not None
    return f"agent:{subject.agent.pk}"


def _owning_team_id(subject: Subject) -> int:
    if subject.grant is not None:
        return subject.grant.agent.owner_id
    return subject.entity.owner_id


def _title(kind: str, subject: Subject) -> str:
    if subject.grant is not None:
        return f"{subject.grant.agent.name} → {subject.grant.tool.name} ({subject.grant.environment})"
    return subject.entity.display_name


def current_assessment(subject: Subject) -> dict[str, Any]:
    if subject.grant is not None:
        return catalog.grant_assessment(subject.grant).to_dict()
    if subject.tool is not None:
        return risk.assess_tool(catalog.tool_facts(subject.tool)).to_dict()
    assert subject.agent is not None
    return dict(subject.agent.risk) or risk.assess_agent(catalog.agent_facts(subject.agent)).to_dict()


def reviewed_facts(subject: Subject) -> catalog_facts.ReviewedFacts:
    """The facts a reviewer judges of the subject and their fingerprint (catalog.fingerprints)."""
    if subject.grant is not None:
        return catalog_facts.grant_reviewed_facts(subject.grant)
    if subject.tool is not None:
        return catalog_facts.tool_reviewed_facts(subject.tool)
    assert subject.agent is not None
    return catalog_facts.agent_reviewed_facts(subject.agent)


def bound_facts(subject: Subject) -> dict[str, Any]:
    """What an approval is bound to: a change of any of these while the request is open starts a new round."""
    return reviewed_facts(subject).facts


def _user_label(user: Any) -> str:
    return user.get_username() if user is not None else "system"


def _is_maintainer(user: AbstractBaseUser | AnonymousUser, team: Any) -> bool:
    return (
        user.is_authenticated
        and TeamMembership.objects.filter(team=team, user=user, role=TeamMembership.Role.MAINTAINER).exists()
    )


def _stage_due(stage: dict[str, Any], now: datetime) -> datetime:
    return now + timedelta(hours=int(stage.get("sla_hours") or 48))


def _locked(
    request_id: int,
    *,
    reviewer: AbstractBaseUser | None = None,
    subject: Subject | None = None,
    subject_first: bool = True,
) -> ApprovalRequest:
    """The request with its requester and owning team, locked until the transaction ends. With a `reviewer`, the
    same query answers whether they already decided in the current round (`request.reviewer_decided`): a decision
    needs it under the lock.

    The subject's rows (tool, agent; both for a grant) are locked too, so a transition and a change of the
    subject's facts (which locks the subject, then its requests: approvals.rounds) never interleave. By default
    the subject first, in the catalog writers' order, so the two wait for each other. A decision
    (`subject_first=False`) locks the request first, then the subject without waiting: a fact change being
    written at that moment makes it a conflict (409), never a deadlock, and never an approval on facts that are
    being replaced."""
    if subject_first:
        _lock_subject(request_id, subject)
    try:
        request = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .select_related("requester", "owning_team")
            .get(pk=request_id)
        )
    except ApprovalRequest.DoesNotExist:
        raise ApprovalConflict(f"Request #{request_id} does not exist.") from None
    if reviewer is not None:
        # A query of its own: as an annotation of the locked query it cost twice as much to compose.
        request.reviewer_decided = Decision.objects.filter(
            request_id=request_id, round=request.round, reviewer=reviewer
        ).exists()
    if not subject_first:
        try:  # a failed lock leaves the transaction unusable: the caller's atomic block rolls it back
            _lock_subject(request_id, subject, request=request, nowait=True)
        except OperationalError as exc:
            raise ApprovalConflict(
                f"the facts changed since you loaded this request: a change of its subject is being written right "
                f"now; reload request #{request_id} in a moment and review the new facts."
            ) from exc
    return request


def _lock_subject(
    request_id: int, subject: Subject | None, *, request: ApprovalRequest | None = None, nowait: bool = False
) -> None:
    if subject is not None:  # the caller loaded it: its ids are known
        tool_id = subject.tool.pk if subject.tool is not None else None
        agent_id = subject.agent.pk if subject.agent is not None else None
    elif request is not None and not request.grant_id:
        tool_id, agent_id = request.tool_id, request.agent_id
    else:
        subject_ids = (
            ApprovalRequest.objects.filter(pk=request_id)
            .values_list("agent_id", "tool_id", "grant__agent_id", "grant__tool_id")
            .first()
        )
        if subject_ids is None:
            raise ApprovalConflict(f"Request #{request_id} does not exist.")
        agent_id, tool_id, grant_agent_id, grant_tool_id = subject_ids
        tool_id, agent_id = tool_id or grant_tool_id, agent_id or grant_agent_id
    if tool_id is not None:
        list(Tool.objects.select_for_update(nowait=nowait).filter(pk=tool_id).values_list("pk"))
    if agent_id is not None:
        list(Agent.objects.select_for_update(nowait=nowait).filter(pk=agent_id).values_list("pk"))


# --- submit --------------------------------------------------------------------------------------------------


def request_submit(
    *,
    actor: AbstractBaseUser,
    kind: str,
    agent: Agent | None = None,
    tool: Tool | None = None,
    grant: ToolGrant | None = None,
    justification: str = "",
    attest: bool = False,
    previous: ApprovalRequest | None = None,
    check_permission: bool = True,
    draft: bool = False,
) -> ApprovalRequest:
    """Open a request and start its checks, or keep it as a draft (`draft=True`) to submit later."""
    if kind not in ApprovalRequest.Kind.values:
        raise ApprovalError({"kind": f"must be one of {', '.join(ApprovalRequest.Kind.values)}."})
    if sum(x is not None for x in (agent, tool, grant)) != 1:
        raise ApprovalError({"subject": "give exactly one of agent, tool or grant."})
    if len(justification) > MAX_COMMENT:
        raise ApprovalError({"justification": f"is {len(justification)} characters; at most {MAX_COMMENT}."})
    expected = {
        ApprovalRequest.Kind.AGENT_ONBOARDING: agent is not None,
        ApprovalRequest.Kind.TOOL_ONBOARDING: tool is not None,
        ApprovalRequest.Kind.TOOL_GRANT: grant is not None,
    }
    if kind in expected and not expected[kind]:
        subject_name = {"agent_onboarding": "agent", "tool_onboarding": "tool", "tool_grant": "grant"}[kind]
        raise ApprovalError({"subject": f"a {kind.replace('_', ' ')} request is about a {subject_name}."})
    if check_permission and kind in (ApprovalRequest.Kind.RECERTIFICATION, ApprovalRequest.Kind.RE_REVIEW):
        raise ApprovalError({"kind": "recertification and re-review requests are opened by the portal itself."})
    if kind == ApprovalRequest.Kind.TOOL_GRANT and grant is not None and grant.is_active:
        expiry = f" until {grant.expires_at:%Y-%m-%d}" if grant.expires_at else ""
        raise ApprovalConflict(f"This grant is already approved{expiry}; recertification renews it.")
    subject = Subject(agent=grant.agent if grant else agent, tool=grant.tool if grant else tool, grant=grant)
    if subject.tool is not None:  # the risk and the reviewed facts both read them: once
        prefetch_related_objects([subject.tool], "capabilities")
    team_id = _owning_team_id(subject)
    if check_permission and not (user_is_platform_admin(actor) or _is_maintainer(actor, team_id)):
        team = Team.objects.get(pk=team_id)  # only the refusal needs more than its id
        raise ApprovalPermissionError(
            f"Only maintainers of team {team.name} (or platform admins) can submit this request."
        )
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
    audit_record(
        action="approvals.request.submitted",
        target=request,
        changes={"kind": kind, "subject": request.subject_key, "tier": tier, "attested": False, "round": 1},
    )
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


# --- checks ----------------------------------------------------------------------------------------------------


def request_submit_draft(*, actor: AbstractBaseUser, request_id: int, attest: bool = False) -> ApprovalRequest:
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


@dataclass(frozen=True)
class ClaimedCheck:
    id: int
    name: str
    attempts: int


@dataclass(frozen=True)
class ChecksOutcome:
    """What one run of a round's checks did; `retry_in` is set when a check should be tried again later."""

    claimed: int
    retry_in: int | None = None


def _claim_checks(request_id: int, round_number: int) -> list[ClaimedCheck]:
    """Claim the round's checks that nobody runs: pending ones, and running ones whose lease expired (their
    worker died). One conditional UPDATE ... RETURNING, so two deliveries never claim the same check; a duplicate
    delivery during a live run finds nothing to claim.

    Hand-written because it is a conditional-update claim that must return what it claimed: the ORM's version
    (lock the candidates, then update them) cost bench.approvals 12 ms of CPU per workflow."""
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    table = connection.ops.quote_name(CheckRun._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, attempts = attempts + 1, lease_until = %s, started_at = %s "  # noqa: S608 (names are ours)
            "WHERE request_id = %s AND round = %s AND (status = %s OR (status = %s AND lease_until < %s)) "
            "RETURNING id, name, attempts",
            [
                CheckRun.Status.RUNNING,
                adapt(now + _check_lease()),
                adapt(now),
                request_id,
                round_number,
                CheckRun.Status.PENDING,
                CheckRun.Status.RUNNING,
                adapt(now),
            ],
        )
        return [ClaimedCheck(id=row[0], name=row[1], attempts=row[2]) for row in cursor.fetchall()]


def checks_run(*, request_id: int, round_number: int) -> ChecksOutcome:
    """Run the round's unclaimed checks, record each one's outcome, and move the request on when all are done.

    A check that cannot get an answer (CheckTransientError) goes back to pending and is tried again after a
    backoff, up to CHECK_MAX_ATTEMPTS; then it is recorded as an error. It never passes silently."""
    claimed = _claim_checks(request_id, round_number)
    if not claimed:
        # A redelivery after a worker died between a round's commit and its sending: send what it left.
        notifications.notifications_send(notifications.notifications_unsent(request_id))
        return ChecksOutcome(claimed=0)
    agent_id, tool_id, grant_id, round_size = _round_subject(request_id, round_number)
    subject = subject_of(
        ApprovalRequest(pk=request_id, agent_id=agent_id, tool_id=tool_id, grant_id=grant_id), with_capabilities=True
    )
    with SafeHttpClient().session() as http:
        by_name = run_round((c.name for c in claimed), subject, http)
    outcomes = {c.id: by_name[c.name] for c in claimed}
    retry = [c for c in claimed if isinstance(outcomes[c.id], CheckTransientError) and c.attempts < CHECK_MAX_ATTEMPTS]
    # The transition's notifications go out from this task once it has committed, not as a message each.
    with notifications.sent_by_caller() as created:
        _checks_record(request_id, round_number, claimed, outcomes, subject, whole_round=len(claimed) == round_size)
    if created:
        transaction.on_commit(lambda: notifications.notifications_send(created))
    if retry:
        return ChecksOutcome(claimed=len(claimed), retry_in=min(2 ** max(c.attempts for c in retry), 60))
    return ChecksOutcome(claimed=len(claimed))


def _round_subject(request_id: int, round_number: int) -> tuple[int | None, int | None, int | None, int]:
    """The request's agent, tool and grant ids and the number of checks in its round, in one query (a row per
    check, each with the request's ids)."""
    rows = list(
        CheckRun.objects.filter(request_id=request_id, round=round_number).values_list(
            "request__agent_id", "request__tool_id", "request__grant_id"
        )
    )
    agent_id, tool_id, grant_id = rows[0]
    return agent_id, tool_id, grant_id, len(rows)


def _checks_record(
    request_id: int,
    round_number: int,
    claimed: list[ClaimedCheck],
    outcomes: dict[int, CheckResult | CheckTransientError],
    subject: Subject,
    *,
    whole_round: bool = False,
) -> None:
    """Record the outcomes in one transaction with the evaluation. Only our own claims are written (the UPDATE
    matches the attempt we claimed): a check whose lease expired and was claimed again belongs to the newer run.

    When our claim covered the whole round (`whole_round`) and every write landed, the round's checks are exactly
    what we just wrote, so they are evaluated without reading them back."""
    now = timezone.now()
    written: list[CheckRun] = []
    for claim in claimed:
        outcome = outcomes[claim.id]
        check = CheckRun(pk=claim.id, request_id=request_id, round=round_number, name=claim.name)
        check.attempts, check.output, check.finished_at = claim.attempts, None, None
        if isinstance(outcome, CheckResult):
            check.status = CheckRun.Status.PASSED if outcome.passed else CheckRun.Status.FAILED
            check.summary, check.output, check.finished_at = outcome.summary[:500], outcome.details, now
        elif claim.attempts < CHECK_MAX_ATTEMPTS:
            check.status, check.summary = CheckRun.Status.PENDING, str(outcome)[:500]
        else:
            check.status, check.finished_at = CheckRun.Status.ERROR, now
            check.summary = f"Could not complete after {claim.attempts} attempts: {outcome}"[:500]
        written.append(check)
    with transaction.atomic(), audit_deferred():
        request = _locked(request_id, subject=subject)
        landed = _write_outcomes(written)
        if whole_round and landed == len(written):
            checks = sorted(written, key=lambda c: c.name)
        else:
            checks = list(CheckRun.objects.filter(request_id=request_id, round=round_number).order_by("name"))
        _evaluate_locked(request, checks, round_number, subject)


def _write_outcomes(checks: list[CheckRun]) -> int:
    """UPDATE each check still held by our claim (running, at the attempt we claimed); how many were. An output
    or finish time of None leaves the column as it is (a check going back to pending keeps both).

    Hand-written because it is the write-back of a conditional-update claim, one statement per check sent as one
    batch: the ORM's (an update per check, or bulk_update's CASE) cost bench.approvals 20 ms of CPU per workflow."""
    table = connection.ops.quote_name(CheckRun._meta.db_table)
    output = CheckRun._meta.get_field("output")
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        [
            check.status,
            check.summary,
            None if check.output is None else output.get_db_prep_save(check.output, connection),
            adapt(check.finished_at),
            check.pk,
            CheckRun.Status.RUNNING,
            check.attempts,
        ]
        for check in checks
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET status = %s, summary = %s, output = COALESCE(%s, output), "  # noqa: S608 (names are ours)
            "finished_at = COALESCE(%s, finished_at), lease_until = NULL "
            "WHERE id = %s AND status = %s AND attempts = %s",
            rows,
        )
        return int(cursor.rowcount)


def _system() -> Actor:
    return Actor(kind="system", user_id=None, label="system (approvals)")


def request_checks_evaluate(*, request_id: int, round_number: int) -> ApprovalRequest | None:
    """When every check of the round has finished, move the request on. Idempotent: only the first caller
    that finds the request still checking in this round does anything."""
    with transaction.atomic(), audit_deferred():
        request = _locked(request_id)
        checks = list(request.checks.filter(round=round_number))
        return _evaluate_locked(request, checks, round_number, None)


def _evaluate_locked(
    request: ApprovalRequest, checks: list[CheckRun], round_number: int, subject: Subject | None
) -> ApprovalRequest | None:
    if request.state != ApprovalRequest.State.CHECKING or request.round != round_number:
        return None
    if any(c.status in (CheckRun.Status.PENDING, CheckRun.Status.RUNNING) for c in checks):
        return None
    with acting_as(_system()):
        audit_record(
            action="approvals.request.checks_completed",
            target=request,
            changes={
                "round": round_number,
                "checks": {c.name: {"status": c.status, "summary": c.summary, "attempts": c.attempts} for c in checks},
            },
        )
        _adopt_recomputed_risk(request, checks)
        failed = [c for c in checks if c.status in (CheckRun.Status.FAILED, CheckRun.Status.ERROR)]
        if failed:
            reasons = [f"{CHECK_TITLES.get(c.name, c.name)}: {c.summary}" for c in failed]
            _to_changes_requested(request, reasons=reasons, by="automated checks")
            return request
        policy = request.policy_snapshot
        problem = snapshot_problem(policy)
        if problem is not None:
            # Never an endless retry: the request waits where people see it until a platform admin resolves it.
            _to_changes_requested(request, reasons=[problem], by="approval policy")
            return request
        if policy.get("auto_approve") and not policy.get("stages"):
            if policy.get("requires_attestation") and request.attested_at is None:
                _enter_stage(
                    request, 0, stage={"name": "Owner attestation", "role": OWNER_ATTESTATION_ROLE, "sla_hours": 72}
                )
            else:
                _approve(request, approver=None, subject=subject)
            return request
        _enter_stage(request, 0)
        return request


def snapshot_problem(policy: dict[str, Any]) -> str | None:
    """Why a request cannot be reviewed under its policy snapshot, or None. A snapshot taken while a policy had no
    stages and no automatic approval (or damaged in storage) must not leave the request waiting for nobody."""
    stages = policy.get("stages")
    tier = policy.get("tier", "its")
    fix = (
        "A platform admin fixes the policy, then resubmits the request (or withdraws it); its requester and the "
        "owning team's maintainers may resubmit too."
    )
    if not isinstance(stages, list) or not all(
        isinstance(stage, dict) and stage.get("name") and stage.get("role") for stage in stages
    ):
        return f"The approval policy this request was submitted under ({tier} tier) is damaged. {fix}"
    if not stages and not policy.get("auto_approve"):
        return f"The approval policy of the {tier} tier had no review stages when this was submitted. {fix}"
    return None


def _adopt_recomputed_risk(request: ApprovalRequest, checks: list[CheckRun]) -> None:
    """The risk check's tier wins: a riskier subject gets the deeper policy before anyone reviews it."""
    risk_check = next((c for c in checks if c.name == "risk_recomputed" and c.status == CheckRun.Status.PASSED), None)
    if risk_check is None:
        return
    assessment = risk_check.output.get("assessment") or {}
    tier = assessment.get("tier")
    if tier and tier != request.tier:
        before = request.tier
        request.tier = tier
        request.risk = assessment
        request.policy_snapshot = policy_snapshot(tier)
        request.save(update_fields=["tier", "risk", "policy_snapshot", "updated_at"])
        audit_record(
            action="approvals.request.rescored", target=request, changes={"tier": {"before": before, "after": tier}}
        )


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


# --- decisions -----------------------------------------------------------------------------------------------


def stale_facts_reason(request: ApprovalRequest) -> str:
    """The 409 message for a decision made on facts that are no longer the subject's."""
    changed = resubmission_changes(request) if request.round > 1 else {}
    what = ", ".join(sorted(changed)[:8]) or "the reviewed facts"
    return (
        f"the facts changed since you loaded this request: {what} changed and round {request.round} started "
        f"({request.get_state_display()}); reload request #{request.pk} and review the new facts."
    )


def decision_refusal(
    user: AbstractBaseUser | AnonymousUser, request: ApprovalRequest, *, already_decided: bool | None = None
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
        return "You already decided on this request in this round; one person counts once."
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


def _attestation_refusal(user: AbstractBaseUser | AnonymousUser, request: ApprovalRequest) -> str | None:
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


def _attest_on_submit(actor: AbstractBaseUser, request: ApprovalRequest) -> None:
    """`attest` on submitting a draft or resubmitting: refused for the requester and for anyone who could not
    attest at the attestation stage."""
    if actor.pk == request.requester_id:
        raise ApprovalError({"attest": REQUESTER_CANNOT_ATTEST})
    refusal = _attestation_refusal(actor, request)
    if refusal is not None:
        raise ApprovalPermissionError(refusal)


def request_decide(
    *,
    actor: AbstractBaseUser,
    request_id: int,
    outcome: str,
    comment: str = "",
    stage_index: int | None = None,
    facts_fingerprint: str | None = None,
) -> ApprovalRequest:
    """Decide the current stage. `facts_fingerprint` is the fingerprint of the facts the reviewer saw (the review
    page and the API send it; both require it to approve): when the subject's facts changed since, the decision is
    refused under the row lock, so no approval is ever recorded on facts other than the current ones. None is for
    callers that decide on what they just read under the same lock (the portal's own demo and tests)."""
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
    try:
        with transaction.atomic(), audit_deferred():
            request = _locked(request_id, reviewer=actor, subject_first=False)
            if facts_fingerprint is not None and facts_fingerprint != request.facts_fingerprint:
                raise ApprovalConflict(stale_facts_reason(request))
            if request.state != ApprovalRequest.State.IN_REVIEW:
                raise ApprovalConflict(
                    f"Request #{request.pk} is {request.get_state_display()}; it was decided or withdrawn meanwhile."
                )
            if stage_index is not None and stage_index != request.current_stage:
                raise ApprovalConflict("That stage was decided meanwhile; reload to see the request's current stage.")
            refusal = decision_refusal(actor, request, already_decided=request.reviewer_decided)
            if refusal is not None:
                raise ApprovalPermissionError(refusal)
            return _decide_locked(actor, request, outcome, comment)
    except ApprovalPermissionError:
        with transaction.atomic():
            audit_record(
                action="approvals.decision.refused",
                object_type="approvals.approvalrequest",
                object_id=request_id,
                changes={"outcome": outcome, "reason": refusal},
            )
        raise
    except IntegrityError as exc:
        raise ApprovalConflict(
            "This decision was already recorded (double submit or another reviewer); reload."
        ) from exc


def _decide_locked(actor: AbstractBaseUser, request: ApprovalRequest, outcome: str, comment: str) -> ApprovalRequest:
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
    # No savepoint: a duplicate (double submit, another reviewer) fails the whole transition, and request_decide
    # turns the IntegrityError into a 409.
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


def request_attest(*, actor: AbstractBaseUser, request_id: int) -> ApprovalRequest:
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
    """The subject for a status change only: grant_set_status and tool_set_status lock and reload by id, so
    those are references without a query; an agent's current status decides whether it changes, so it loads."""
    if request.grant_id:
        return Subject(agent=None, tool=None, grant=ToolGrant(pk=request.grant_id))
    if request.tool_id:
        return Subject(agent=None, tool=Tool(pk=request.tool_id), grant=None)
    return subject_of(request)


def _approve(request: ApprovalRequest, *, approver: AbstractBaseUser | None, subject: Subject | None = None) -> None:
    validity = timedelta(days=int(request.policy_snapshot.get("validity_days") or 365))
    expires_at = timezone.now() + validity
    before = _finish(request, ApprovalRequest.State.APPROVED, approval_expires_at=expires_at)
    subject = subject or _status_subject(request)
    reason = f"approval request #{request.pk}"
    if subject.grant is not None:
        catalog.grant_set_status(
            grant=subject.grant, status=ToolGrant.Status.APPROVED, expires_at=expires_at, reason=reason
        )
    elif subject.tool is not None:
        catalog.tool_set_status(tool=subject.tool, status=Tool.Status.APPROVED, reason=reason)
    elif subject.agent is not None and subject.agent.status in (
        Agent.Status.DRAFT,
        Agent.Status.ONBOARDING,
        Agent.Status.SUSPENDED,
    ):
        catalog.agent_set_status(agent=subject.agent, status=Agent.Status.ACTIVE, reason=reason)
    _supersede_approvals(request)
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


def _supersede_approvals(request: ApprovalRequest) -> None:
    """Earlier approvals of the same subject stop driving recertification."""
    ApprovalRequest.objects.filter(
        subject_key=request.subject_key, state=ApprovalRequest.State.APPROVED, recertification_opened=False
    ).exclude(pk=request.pk).update(recertification_opened=True)


def _reject(request: ApprovalRequest, *, comment: str, by: AbstractBaseUser) -> None:
    before = _finish(request, ApprovalRequest.State.REJECTED)
    subject = _status_subject(request)
    reason = f"rejected in approval request #{request.pk}"
    if subject.grant is not None:
        catalog.grant_set_status(grant=subject.grant, status=ToolGrant.Status.DENIED, reason=reason)
    elif subject.tool is not None:
        catalog.tool_set_status(tool=subject.tool, status=Tool.Status.REJECTED, reason=reason)
    elif subject.agent is not None and subject.agent.status == Agent.Status.ONBOARDING:
        catalog.agent_set_status(agent=subject.agent, status=Agent.Status.DRAFT, reason=reason)
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


# --- requester actions -------------------------------------------------------------------------------------


def request_withdraw(*, actor: AbstractBaseUser, request_id: int) -> ApprovalRequest:
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
        elif subject.agent is not None and subject.grant is None and subject.agent.status == Agent.Status.ONBOARDING:
            catalog.agent_set_status(
                agent=subject.agent, status=Agent.Status.DRAFT, reason=f"request #{request.pk} withdrawn"
            )
        audit_record(
            action="approvals.request.withdrawn",
            target=request,
            changes={"state": {"before": before, "after": "withdrawn"}},
        )
        return request


def request_resubmit(
    *, actor: AbstractBaseUser, request_id: int, justification: str | None = None, attest: bool = False
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


# --- periodic scans (Celery beat) --------------------------------------------------------------------------------


def sla_scan(*, now: datetime | None = None) -> dict[str, int]:
    """Reminders before the stage is due, then escalation to the stage group's leads, then platform admins.
    Each step claims the row with a conditional UPDATE, so two beats or a re-run never notify twice."""
    now = now or timezone.now()
    counts = {"reminded": 0, "escalated": 0}
    in_review = ApprovalRequest.objects.filter(state=ApprovalRequest.State.IN_REVIEW, due_at__isnull=False)
    for request in (
        in_review.filter(reminded_at__isnull=True)
        .only("pk", "due_at", "policy_snapshot", "current_stage", "state")
        .iterator()
    ):
        stage = request.stage
        window = timedelta(hours=int(stage.get("sla_hours", 48)) if stage else 48) / 4
        if request.due_at is None or now < request.due_at - window:
            continue
        with transaction.atomic():
            if (
                ApprovalRequest.objects.filter(
                    pk=request.pk, reminded_at__isnull=True, state=ApprovalRequest.State.IN_REVIEW
                ).update(reminded_at=now)
                == 1
            ):
                fresh = ApprovalRequest.objects.get(pk=request.pk)
                notifications.notify_stage(fresh, fresh.stage or {}, event="reminder")
                counts["reminded"] += 1
    for level in (1, 2):
        for request in in_review.filter(escalation_level=level - 1, due_at__lt=now).iterator():
            stage = request.stage or {}
            overdue_for = now - request.due_at if request.due_at else timedelta(0)
            if level == 2 and overdue_for < timedelta(hours=int(stage.get("sla_hours", 48))) / 2:
                continue
            with transaction.atomic():
                claimed = ApprovalRequest.objects.filter(
                    pk=request.pk, escalation_level=level - 1, state=ApprovalRequest.State.IN_REVIEW
                ).update(escalation_level=level)
                if claimed == 1:
                    target_role = (
                        ESCALATION_LEADS.get(stage.get("role", ""), PLATFORM_ADMIN) if level == 1 else PLATFORM_ADMIN
                    )
                    with acting_as(_system()):
                        audit_record(
                            action="approvals.request.escalated",
                            target=request,
                            changes={"level": level, "to": target_role},
                        )
                    notifications.notify_role(request, target_role, event=f"escalation-{level}")
                    counts["escalated"] += 1
    return counts


def requeue_stale_checks(*, now: datetime | None = None) -> list[int]:
    """Rounds with a check whose worker died (lease expired while running) or whose message was lost (pending
    for longer than a lease) are sent again; returns the request ids. The claim in checks_run makes a
    duplicate delivery harmless."""
    now = now or timezone.now()
    lease = _check_lease()
    stale = CheckRun.objects.filter(request__state=ApprovalRequest.State.CHECKING).filter(
        Q(status=CheckRun.Status.RUNNING, lease_until__lt=now)
        | Q(status=CheckRun.Status.PENDING, request__submitted_at__lt=now - lease)
    )
    rounds = list(stale.values_list("request_id", "round").distinct().order_by("request_id")[:1000])
    if rounds:
        from approvals.tasks import run_checks

        for request_id, round_number in rounds:
            run_checks.delay(request_id, round_number)
    return [request_id for request_id, _ in rounds]


def expire_grants(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    expired = 0
    for grant in (
        ToolGrant.objects.filter(status=ToolGrant.Status.APPROVED, expires_at__lt=now)
        .select_related("agent", "tool")
        .iterator()
    ):
        with transaction.atomic(), acting_as(_system()):
            if (
                ToolGrant.objects.filter(pk=grant.pk, status=ToolGrant.Status.APPROVED, expires_at__lt=now).update(
                    status=ToolGrant.Status.EXPIRED
                )
                == 1
            ):
                grant.status = ToolGrant.Status.EXPIRED
                catalog.grant_rescore(grant)
                catalog.agent_rescore(grant.agent)
                audit_record(action="catalog.grant.expired", target=grant, changes={"expires_at": grant.expires_at})
                notifications.notify_team(
                    grant.agent.owner,
                    event="grant-expired",
                    subject_line=f"Grant expired: {grant}",
                    body=f"The grant {grant} expired on {grant.expires_at:%Y-%m-%d}.",
                    dedupe=f"grant-expired:{grant.pk}:{grant.expires_at:%Y%m%d}",
                )
                expired += 1
    return expired


def open_recertifications(*, now: datetime | None = None) -> int:
    """Approvals nearing their end get a recertification request, once."""
    now = now or timezone.now()
    opened = 0
    due = ApprovalRequest.objects.filter(
        state=ApprovalRequest.State.APPROVED,
        recertification_opened=False,
        approval_expires_at__lt=now + RECERTIFICATION_WINDOW,
    ).exclude(kind=ApprovalRequest.Kind.AGENT_ONBOARDING)
    for approved in due.iterator():
        with transaction.atomic():
            if (
                ApprovalRequest.objects.filter(pk=approved.pk, recertification_opened=False).update(
                    recertification_opened=True
                )
                != 1
            ):
                continue
            subject = subject_of(approved)
            if subject.grant is not None and subject.grant.status != ToolGrant.Status.APPROVED:
                continue
            try:
                with transaction.atomic(), acting_as(_system()):
                    _submit_locked(
                        approved.requester,
                        ApprovalRequest.Kind.RECERTIFICATION,
                        subject,
                        _owning_team_id(subject),
                        f"Recertification of #{approved.pk}, which ends {approved.approval_expires_at:%Y-%m-%d}.",
                        False,
                        approved,
                    )
                opened += 1
            except IntegrityError:
                continue
    return opened


def expire_stale_requests(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    stale = ApprovalRequest.objects.filter(
        state__in=[ApprovalRequest.State.IN_REVIEW, ApprovalRequest.State.CHANGES_REQUESTED],
        submitted_at__lt=now - REQUEST_MAX_AGE,
    )
    count = 0
    for request in stale.iterator():
        with transaction.atomic(), acting_as(_system()):
            locked = _locked(request.pk)
            if locked.state not in (ApprovalRequest.State.IN_REVIEW, ApprovalRequest.State.CHANGES_REQUESTED):
                continue
            before = _finish(locked, ApprovalRequest.State.EXPIRED)
            audit_record(
                action="approvals.request.expired",
                target=locked,
                changes={"state": {"before": before, "after": "expired"}},
            )
            notifications.notify_requester(locked, "expired")
            count += 1
    return count


def users_with_role(role: str) -> Iterable[Any]:
    return get_user_model().objects.filter(groups__name=role, is_active=True).distinct()


def actor_of(user: Any) -> Actor | None:
    return actor_for_user(user)


# --- grant requests, from every door ---------------------------------------------------------------------------


@transaction.atomic
def grant_request_submit(
    *,
    actor: AbstractBaseUser,
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
