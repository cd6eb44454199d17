"""Approval reads: the reviewer queue, the requester's requests, a request's timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, prefetch_related_objects
from django.urls import reverse
from django.utils import timezone

from approvals.checks import CHECK_TITLES
from approvals.models import OPEN_STATES, ApprovalRequest, CheckRun, Decision, Notification
from catalog.facts import grant_coverage
from catalog.models import Agent, Capability, TeamMembership, Tool, ToolGrant
from catalog.panels import EntityPage
from catalog.selectors import related_without_long_fields
from portal.models import AuditEvent
from portal.roles import SECURITY_REVIEWER, user_has_role, user_is_platform_admin
from portal.types import User


def _user_roles(user: User | AnonymousUser) -> list[str]:
    if not user.is_authenticated:
        return []
    return list(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]


def review_queue(
    *, user: User | AnonymousUser, tier: str = "", kind: str = "", team: str = ""
) -> QuerySet[ApprovalRequest]:
    """Requests waiting at a stage this user's groups decide (or an attestation by a team they maintain),
    excluding their own, most urgent first."""
    from approvals.services import OWNER_ATTESTATION_ROLE

    if not user.is_authenticated:
        return ApprovalRequest.objects.none()
    maintained = TeamMembership.objects.filter(user=user, role=TeamMembership.Role.MAINTAINER).values("team_id")
    condition = Q(current_role__in=_user_roles(user)) | Q(
        current_role=OWNER_ATTESTATION_ROLE, owning_team__in=maintained
    )
    if user_is_platform_admin(user) or user_has_role(user, SECURITY_REVIEWER):
        # Agree with decisions._attestation_refusal: when the requester is the team's only maintainer, platform
        # admins and security reviewers attest, so the request waits in their queue (else nobody sees it).
        other_maintainer = TeamMembership.objects.filter(
            team=OuterRef("owning_team"), role=TeamMembership.Role.MAINTAINER, user__is_active=True
        ).exclude(user=OuterRef("requester"))
        condition |= Q(Q(current_role=OWNER_ATTESTATION_ROLE), ~Exists(other_maintainer))
    queue = ApprovalRequest.objects.filter(condition, state=ApprovalRequest.State.IN_REVIEW).exclude(requester=user)
    # Agree with decision_refusal: one person counts once, and at high tiers not from the owning team.
    already = Decision.objects.filter(request=OuterRef("pk"), round=OuterRef("round"), reviewer=user)
    my_teams = TeamMembership.objects.filter(user=user).values("team_id")
    queue = queue.exclude(Exists(already)).exclude(
        Q(policy_snapshot__exclude_owning_team=True, owning_team__in=my_teams) & ~Q(current_role=OWNER_ATTESTATION_ROLE)
    )
    if tier:
        queue = queue.filter(tier=tier)
    if kind:
        queue = queue.filter(kind=kind)
    if team:
        queue = queue.filter(owning_team__name=team)
    # A check's raw output (an MCP server's whole tool list) is for its own record; rows show name, status, summary.
    checks = Prefetch("checks", queryset=CheckRun.objects.defer("output"), to_attr="loaded_checks")
    return queue.select_related("owning_team", "requester").prefetch_related(checks).order_by("due_at", "pk")


def my_requests(*, user: User | AnonymousUser, state: str = "") -> QuerySet[ApprovalRequest]:
    if not user.is_authenticated:
        return ApprovalRequest.objects.none()
    requests = ApprovalRequest.objects.filter(requester=user)
    if state:
        requests = requests.filter(state=state)
    return requests.select_related("owning_team").order_by("-created_at")


def request_list(
    *, user: User | AnonymousUser, state: str = "", kind: str = "", tier: str = ""
) -> QuerySet[ApprovalRequest]:
    """Every signed-in user may read requests (the catalog is open to read; so is why something was approved)."""
    requests = ApprovalRequest.objects.all()
    if state:
        requests = requests.filter(state=state)
    if kind:
        requests = requests.filter(kind=kind)
    if tier:
        requests = requests.filter(tier=tier)
    return requests.select_related("owning_team", "requester").order_by("-created_at")


def request_detail(*, request_id: int) -> ApprovalRequest:
    """The request with its people joined and its one subject (agent, tool or grant) loaded by a second query.
    Joining all eight relations cost PostgreSQL 4 ms of planning per call; prefetching all four lookups cost
    more Python than the query."""
    return with_subject(
        ApprovalRequest.objects.select_related("owning_team", "requester", "attested_by").get(pk=request_id)
    )


def with_subject(request: ApprovalRequest) -> ApprovalRequest:
    """Load the request's one subject (agent, tool or grant with its agent and tool) into it. A request a transition
    returned carries its tool's or agent's row as it locked and changed it (name and status, current until the
    transaction's end; other fields load when read): that row is used rather than read again."""
    if request.grant_id:
        request.grant = ToolGrant.objects.select_related("agent", "tool").get(pk=request.grant_id)
    elif request.tool_id:
        request.tool = request.locked_tool or Tool.objects.get(pk=request.tool_id)
    elif request.agent_id:
        request.agent = request.locked_agent or Agent.objects.get(pk=request.agent_id)
    return request


def current_checks(request: ApprovalRequest) -> list[CheckRun]:
    """The current round's checks: from the prefetched ones when the queue loaded them, else only this round's,
    without their raw output (pages and the API show name, status and summary)."""
    loaded = getattr(request, "loaded_checks", None)  # review_queue's prefetch
    if loaded is not None:
        return [check for check in loaded if check.round == request.round]
    return list(CheckRun.objects.filter(request_id=request.pk, round=request.round).defer("output").order_by("name"))


def request_checks_all(request: ApprovalRequest) -> list[CheckRun]:
    """Every round's checks, by round and name, without their raw output."""
    return list(request.checks.defer("output").order_by("round", "name"))


@dataclass
class TimelineItem:
    at: datetime
    kind: str  # check, decision, notification, event
    title: str
    detail: str = ""
    status: str = ""
    actor: str = ""


def request_timeline(
    *,
    request: ApprovalRequest,
    checks: list[CheckRun] | None = None,
    decisions: list[Decision] | None = None,
) -> list[TimelineItem]:
    """Events, checks, decisions and notifications of the request in order. `checks` (every round's, without
    their output) and `decisions` (with their reviewers): when the caller read them already (request_checks_all,
    the API's detail)."""
    items: list[TimelineItem] = []
    for event in AuditEvent.objects.filter(object_type="approvals.approvalrequest", object_id=str(request.pk)).order_by(
        "id"
    ):
        if event.action.startswith("approvals.check.") or event.action == "approvals.request.checks_completed":
            continue
        items.append(
            TimelineItem(
                event.occurred_at,
                "event",
                event.action.removeprefix("approvals."),
                _event_detail(event.changes),
                actor=event.actor_label,
            )
        )
    for check in request_checks_all(request) if checks is None else checks:
        items.append(
            TimelineItem(
                check.finished_at or check.started_at or request.created_at,
                "check",
                f"round {check.round}: {CHECK_TITLES.get(check.name, check.name)}",
                check.summary,
                check.status,
            )
        )
    if decisions is None:
        decisions = list(Decision.objects.filter(request=request).select_related("reviewer").order_by("created_at"))
    for decision in decisions:
        items.append(
            TimelineItem(
                decision.created_at,
                "decision",
                f"{decision.get_outcome_display()} at {decision.stage_name}",
                decision.comment,
                decision.outcome,
                decision.reviewer.get_username(),
            )
        )
    for notification in Notification.objects.filter(request=request).order_by("created_at"):
        items.append(
            TimelineItem(
                notification.created_at,
                "notification",
                f"{notification.event} via {notification.channel}",
                notification.target if notification.channel == "email" else "chat webhook",
                notification.status,
            )
        )
    items.sort(key=lambda item: item.at)
    return items


def _event_detail(changes: dict[str, Any]) -> str:
    parts = []
    for key, value in changes.items():
        if isinstance(value, dict) and {"before", "after"} <= set(value):
            parts.append(f"{key}: {value['before']} → {value['after']}")
        elif value not in (None, "", [], {}):
            parts.append(f"{key}: {value}")
    return "; ".join(parts)[:500]


def active_grants_for(*, entity: Agent | Tool) -> list[dict[str, Any]]:
    """Active grants of an agent or tool with the approval behind each (for entity pages). The grants are those the
    catalog page loaded with the entity (each with its other end), in their order; only the approvals are read here."""
    grants_with_ends = ToolGrant.objects.select_related("agent", "tool").defer(
        *related_without_long_fields("agent", Agent), *related_without_long_fields("tool", Tool)
    )
    prefetch_related_objects([entity], Prefetch("grants", queryset=grants_with_ends))  # unless the page did
    now = timezone.now()
    grants = [
        grant
        for grant in entity.grants.all()
        if grant.status == ToolGrant.Status.APPROVED and (grant.expires_at is None or grant.expires_at > now)
    ]
    approvals: dict[str, int] = {}
    if grants:
        # In decision order, so a grant approved more than once links to its latest approval.
        approvals = dict(
            ApprovalRequest.objects.filter(
                subject_key__in=[f"grant:{grant.pk}" for grant in grants], state=ApprovalRequest.State.APPROVED
            )
            .order_by("decided_at")
            .values_list("subject_key", "pk")
        )
    capabilities: dict[int, list[str]] = {}
    if grants and isinstance(entity, Tool):
        # Every grant is of this tool, whose capabilities its page loaded with it (catalog tool_page_detail).
        capabilities[entity.pk] = [capability.name for capability in entity.capabilities.all()]
    elif grants:
        for tool_id, name in Capability.objects.filter(tool_id__in={grant.tool_id for grant in grants}).values_list(
            "tool_id", "name"
        ):
            capabilities.setdefault(tool_id, []).append(name)
    return [
        {
            "grant": grant,
            "approval_id": approvals.get(f"grant:{grant.pk}"),
            "coverage": grant_coverage(grant, capabilities.get(grant.tool_id, [])),
        }
        for grant in grants
    ]


PAGE_NEWEST_REQUESTS = 5


def entity_requests(*, entity: Agent | Tool, newest: int) -> list[ApprovalRequest]:
    """An agent's or tool's `newest` requests and every open one, newest first, in one query, with the fields its
    page shows of them (and the subject's key, which the related manager reads to attach the entity)."""
    shown = ("kind", "state", "tier", "approval_expires_at", "current_stage", "policy_snapshot", "due_at", "created_at")
    requests = entity.approval_requests.only("agent", "tool", "round", "proposed_changes", *shown)
    latest = entity.approval_requests.order_by("-created_at", "-pk").values("pk")[:newest]
    return list(requests.filter(Q(pk__in=latest) | Q(state__in=OPEN_STATES)).order_by("-created_at", "-pk"))


def page_requests(page: EntityPage) -> list[ApprovalRequest]:
    """`entity_requests` of the page's entity, read once for the approvals and runtime panels."""
    return page.read_once(
        "approvals.requests", lambda: entity_requests(entity=page.entity, newest=PAGE_NEWEST_REQUESTS)
    )


def open_requests_for_team(*, team: Any) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(owning_team=team, state__in=OPEN_STATES).order_by("-created_at")


def dashboard_panels(*, user: User | AnonymousUser) -> list[dict[str, Any]]:
    if not user.is_authenticated:
        return []
    queue = review_queue(user=user)
    now = timezone.now()
    counts = queue.aggregate(total=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now)))
    mine = my_requests(user=user).filter(state__in=OPEN_STATES).count()
    panels = [
        {
            "title": "Awaiting my review",
            "value": counts["total"],
            "rows": [{"label": f"{counts['overdue']} overdue"}],
            "url": reverse("approvals:queue"),
            "link_label": "Open the queue",
        },
        {"title": "My open requests", "value": mine, "url": reverse("approvals:mine"), "link_label": "See my requests"},
    ]
    if user_is_platform_admin(user):
        by_state = dict(ApprovalRequest.objects.values_list("state").annotate(n=Count("pk")).order_by())
        panels.append(
            {
                "title": "All requests",
                "value": sum(by_state.values()),
                "rows": [
                    {"label": f"{ApprovalRequest.State(state).label.capitalize()}: {n}"}
                    for state, n in sorted(by_state.items())
                ],
            }
        )
    return panels
