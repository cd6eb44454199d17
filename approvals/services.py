"""Approval workflows: what the transitions share (errors, limits, the request lock, the request's subject).

Every transition is one function: it locks the request row (`_locked`), re-checks its guard after the lock,
writes, audits, and enqueues follow-up tasks only after commit. A lost race is an ApprovalConflict (409), never a
duplicate. The transitions live by seam: `policies` (tier policies), `submitting` (submit, drafts, resubmit,
grant-and-submit), `checks_running` (automated checks and the round's evaluation), `decisions` (decide, attest,
withdraw, and the terminal states), `scans` (the periodic SLA, expiry and recertification scans); `rounds`,
`attestation` and `drift` handle changes of facts.

State machine (per round):  checking -> in_review -> approved | rejected | changes_requested
                            changes_requested -> checking (resubmit, next round)
                            any open state -> withdrawn (requester) | expired (beat, stale)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from approvals.checks import Subject, proposed_agent_assessment
from approvals.models import ApprovalRequest
from catalog import facts as catalog_facts
from catalog import risk, scoring
from catalog.models import Agent, TeamMembership, Tool, ToolGrant
from portal.context import Actor, actor_for_user
from portal.errors import Conflict, InvalidInput, PermissionDenied
from portal.roles import (
    DATA_OWNER,
    PLATFORM_ADMIN,
    SECURITY_LEAD,
    SECURITY_REVIEWER,
)
from portal.types import User

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


class ApprovalError(InvalidInput):
    """Bad input; `errors` maps fields to messages."""


class ApprovalPermissionError(PermissionDenied):
    pass


class ApprovalConflict(Conflict):
    """The request changed meanwhile (another reviewer, a withdrawal, a double submit)."""


def subject_of(request: ApprovalRequest, *, with_capabilities: bool = False, with_owner: bool = True) -> Subject:
    """The request's agent, tool or grant. `with_capabilities` loads the tool's capabilities in the same go
    (the checks and the risk read them several times). The agent or tool comes with its owner team (the reviewed
    facts name it) unless `with_owner=False`: the checks need no more of it than its id (the owner check reads
    the name itself), and joining it cost bench.approvals 0.6 ms of CPU per workflow."""
    if request.grant_id:
        grants = ToolGrant.objects.select_related("agent", "tool", "agent__owner", "tool__owner")
        if with_capabilities:
            grants = grants.prefetch_related("tool__capabilities")
        grant = grants.get(pk=request.grant_id)
        return Subject(agent=grant.agent, tool=grant.tool, grant=grant)
    if request.tool_id:
        tools = Tool.objects.select_related("owner") if with_owner else Tool.objects.all()
        if with_capabilities:
            tools = tools.prefetch_related("capabilities")
        return Subject(agent=None, tool=tools.get(pk=request.tool_id), grant=None)
    agent_id = cast(int, request.agent_id)  # neither a grant nor a tool: the request's one subject is an agent
    agents = Agent.objects.select_related("owner") if with_owner else Agent.objects.all()
    return Subject(agent=agents.get(pk=agent_id), tool=None, grant=None, proposed=dict(request.proposed_changes or {}))


def loaded_subject(request: ApprovalRequest) -> Subject:
    """The subject of a request whose relations are loaded (selectors.with_subject), without a query."""
    if request.grant_id:
        grant = cast(ToolGrant, request.grant)
        return Subject(agent=grant.agent, tool=grant.tool, grant=grant)
    if request.tool_id:
        return Subject(agent=None, tool=request.tool, grant=None)
    return Subject(agent=request.agent, tool=None, grant=None)


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
    if "autonomy_level" in subject.proposed:
        change = subject.proposed["autonomy_level"]
        return f"{subject.entity.display_name}: autonomy {change['before'] or 'unknown'} → {change['after']}"
    return subject.entity.display_name


def current_assessment(subject: Subject) -> dict[str, Any]:
    if subject.grant is not None:
        return scoring.grant_assessment(subject.grant).to_dict()
    if subject.tool is not None:
        return risk.assess_tool(scoring.tool_facts(subject.tool)).to_dict()
    assert subject.agent is not None
    if subject.proposed:
        return proposed_agent_assessment(subject).to_dict()
    return dict(subject.agent.risk) or risk.assess_agent(scoring.agent_facts(subject.agent)).to_dict()


def reviewed_facts(subject: Subject) -> catalog_facts.ReviewedFacts:
    """The facts a reviewer judges of the subject and their fingerprint (catalog.fingerprints)."""
    if subject.grant is not None:
        return catalog_facts.grant_reviewed_facts(subject.grant)
    if subject.tool is not None:
        return catalog_facts.tool_reviewed_facts(subject.tool)
    agent = subject.reviewed_agent
    assert agent is not None
    return catalog_facts.agent_reviewed_facts(agent)


def bound_facts(subject: Subject) -> dict[str, Any]:
    """What an approval is bound to: a change of any of these while the request is open starts a new round."""
    return reviewed_facts(subject).facts


def _user_label(user: Any) -> str:
    return user.get_username() if user is not None else "system"


def _is_maintainer(user: User | AnonymousUser, team: Any) -> bool:
    return (
        user.is_authenticated
        and TeamMembership.objects.filter(team=team, user=user, role=TeamMembership.Role.MAINTAINER).exists()
    )


def _stage_due(stage: dict[str, Any], now: datetime) -> datetime:
    return now + timedelta(hours=int(stage.get("sla_hours") or 48))


def _locked(request_id: int, *, subject: Subject | None = None, subject_ref: str = "") -> ApprovalRequest:
    """The request with its requester and owning team, locked until the transaction ends.

    The subject's rows (tool, agent; both for a grant) are locked first, in the catalog writers' order (a change
    of the subject's facts locks the subject, then its requests: approvals.rounds), so a transition and a fact
    change wait for each other and never interleave or deadlock. A decision waits the same way: for a worker's
    transition on the same subject (milliseconds) it then simply lands; after a fact change it reads the request's
    new round and fingerprint under the lock and is refused (409, what changed named), never recorded on facts
    that were replaced. The locked tool or agent row of a tool's or agent's request (what a status change reads
    and writes of it) comes with the request (`request.locked_tool`, `request.locked_agent`), so the transition's
    status change neither reads nor locks it again.

    Which rows to lock is read from the request unless the caller knows its subject: `subject` as it loaded it, or
    `subject_ref` ("tool:3", the request's `subject_key` a decision form sends back). Only their ids are used, and
    the request read under the lock must name the same subject (a request's subject never changes): a stale or
    forged reference is refused (409) after the locks, and the transaction rolls back."""
    expected = _subject_key(subject) if subject is not None else subject_ref
    tool, agent = _lock_subject(request_id, subject, subject_ref)
    try:
        request = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .select_related("requester", "owning_team")
            .get(pk=request_id)
        )
    except ApprovalRequest.DoesNotExist:
        raise ApprovalConflict(f"Request #{request_id} does not exist.") from None
    if expected and expected != request.subject_key:
        raise ApprovalConflict(f"Request #{request_id} is not about {expected}; reload it.")
    if not request.grant_id:  # a grant's status lives on the grant's row, which grant_set_status locks
        request.locked_tool, request.locked_agent = tool, agent
    return request


# What a status change reads and writes of a tool or an agent (catalog.services._set_status).
_STATUS_FIELDS = ("id", "name", "status", "updated_at")


def _subject_ids(request_id: int, subject: Subject | None, subject_ref: str) -> tuple[int | None, int | None]:
    """The (tool id, agent id) of the request's subject: from the caller's subject or reference when it gave one
    (a grant's reference names neither), else read from the request."""
    if subject is not None:
        return (
            subject.tool.pk if subject.tool is not None else None,
            subject.agent.pk if subject.agent is not None else None,
        )
    kind, _, number = subject_ref.partition(":")
    if number.isdigit() and kind in ("tool", "agent"):
        return (int(number), None) if kind == "tool" else (None, int(number))
    agent_id, tool_id, grant_agent_id, grant_tool_id = ApprovalRequest.objects.values_list(
        "agent_id", "tool_id", "grant__agent_id", "grant__tool_id"
    ).get(pk=request_id)
    return tool_id or grant_tool_id, agent_id or grant_agent_id


def _lock_subject(request_id: int, subject: Subject | None, subject_ref: str) -> tuple[Tool | None, Agent | None]:
    """Lock the subject's tool and agent rows; returns them as locked (the fields a status change needs)."""
    try:
        tool_id, agent_id = _subject_ids(request_id, subject, subject_ref)
        tool = Tool.objects.select_for_update().only(*_STATUS_FIELDS).get(pk=tool_id) if tool_id else None
        agent = Agent.objects.select_for_update().only(*_STATUS_FIELDS).get(pk=agent_id) if agent_id else None
    except (ApprovalRequest.DoesNotExist, Tool.DoesNotExist, Agent.DoesNotExist):
        # The request is gone, or its subject with it (deleting a subject deletes its requests), or the caller's
        # reference names a row that does not exist.
        about = f", or is not about {subject_ref}" if subject_ref else ""
        raise ApprovalConflict(f"Request #{request_id} does not exist{about}.") from None
    return tool, agent


def _system() -> Actor:
    return Actor(kind="system", user_id=None, label="system (approvals)")


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


def users_with_role(role: str) -> Iterable[Any]:
    return get_user_model().objects.filter(groups__name=role, is_active=True).distinct()


def actor_of(user: Any) -> Actor | None:
    return actor_for_user(user)
