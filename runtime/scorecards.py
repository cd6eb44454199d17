"""Scorecards as data: each rule names its level (bronze, silver, gold), the entity kinds it applies to and the fact
it reads. An entity reaches a level when every rule of that level and of the levels below passes. Computed for
every agent and tool by beat (a handful of queries in all, not per entity) and stored; pages read the stored rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import Agent, TeamMembership, Tool, ToolGrant
from runtime.models import Evaluation, Finding, ModelUsageDaily, Scorecard, ToolUsageDaily

LEVELS = ("bronze", "silver", "gold")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    level: str
    kinds: tuple[str, ...]


RULES: tuple[Rule, ...] = (
    Rule("owner_has_maintainer", "Owning team has a maintainer", "bronze", ("agent", "tool")),
    Rule("descriptor_complete", "Descriptor complete", "bronze", ("agent", "tool")),
    Rule("tools_granted_and_approved", "Every tool granted and approved", "silver", ("agent", "tool")),
    Rule("no_open_findings", "No open runtime findings", "silver", ("agent", "tool")),
    Rule("telemetry_recent", "Telemetry seen in the last 7 days", "silver", ("agent", "tool")),
    Rule("eval_passing", "Latest eval result passing", "gold", ("agent",)),
    Rule("recertified_in_time", "Grants approved or recertified in time", "gold", ("agent",)),
    Rule("hints_attested", "Capability hints verified or attested", "gold", ("tool",)),
)


@dataclass
class Facts:
    """Everything the rules read, loaded for all entities at once."""

    now: datetime
    maintained_teams: set[int]
    open_findings_agents: set[str]
    open_findings_tools: set[str]
    recent_agents: set[str]
    recent_tools: set[str]
    called_tools: dict[str, set[str]]
    grants: dict[int, list[ToolGrant]]
    latest_eval: dict[str, bool]


def _descriptor_missing(entity: Agent | Tool) -> list[str]:
    required = ["title", "description", "repository_url", "data_class"]
    required += ["autonomy_level", "human_in_loop", "runtime"] if isinstance(entity, Agent) else ["endpoint_url"]
    return [name for name in required if getattr(entity, name) in (None, "")]


def _check(rule: Rule, entity: Agent | Tool, facts: Facts) -> tuple[bool, str]:
    is_agent = isinstance(entity, Agent)
    checks: dict[str, Callable[[], tuple[bool, str]]] = {
        "owner_has_maintainer": lambda: (entity.owner_id in facts.maintained_teams, ""),
        "descriptor_complete": lambda: (
            not (missing := _descriptor_missing(entity)),
            f"missing {', '.join(missing)}" if missing else "",
        ),
        "tools_granted_and_approved": lambda: _granted(entity, facts),
        "no_open_findings": lambda: (
            entity.name not in (facts.open_findings_agents if is_agent else facts.open_findings_tools),
            "",
        ),
        "telemetry_recent": lambda: (entity.name in (facts.recent_agents if is_agent else facts.recent_tools), ""),
        "eval_passing": lambda: (
            facts.latest_eval.get(entity.name, False),
            "" if entity.name in facts.latest_eval else "no eval result reported",
        ),
        "recertified_in_time": lambda: _recertified(entity, facts) if isinstance(entity, Agent) else (True, ""),
        "hints_attested": lambda: (bool(getattr(entity, "annotations_trusted", False)), ""),
    }
    return checks[rule.id]()


def _granted(entity: Agent | Tool, facts: Facts) -> tuple[bool, str]:
    """An agent: every tool it called holds an active grant and every granted tool is approved. A tool: approved."""
    if isinstance(entity, Tool):
        return entity.status == Tool.Status.APPROVED, f"status {entity.status}"
    agent = entity
    grants = facts.grants.get(agent.pk, [])
    active = {grant.tool.name for grant in grants if grant.is_active}
    ungranted = sorted(facts.called_tools.get(agent.name, set()) - active)
    unapproved = sorted({grant.tool.name for grant in grants if grant.is_active and grant.tool.status != "approved"})
    problems = ([f"called without grant: {', '.join(ungranted)}"] if ungranted else []) + (
        [f"tool not approved: {', '.join(unapproved)}"] if unapproved else []
    )
    return not problems, "; ".join(problems)


def _recertified(agent: Agent, facts: Facts) -> tuple[bool, str]:
    limit = facts.now - timedelta(days=settings.RUNTIME_RECERTIFY_DAYS)
    stale = sorted(
        grant.tool.name
        for grant in facts.grants.get(agent.pk, [])
        if grant.is_active and (grant.approved_at is None or grant.approved_at < limit)
    )
    return not stale, f"overdue: {', '.join(stale)}" if stale else ""


def scorecard_for(entity: Agent | Tool, facts: Facts) -> tuple[str, list[dict[str, Any]]]:
    kind = "agent" if isinstance(entity, Agent) else "tool"
    results = []
    for rule in RULES:
        if kind in rule.kinds:
            passed, detail = _check(rule, entity, facts)
            results.append(
                {"id": rule.id, "title": rule.title, "level": rule.level, "passed": passed, "detail": detail}
            )
    level = ""
    for candidate in LEVELS:
        if all(result["passed"] for result in results if result["level"] == candidate):
            level = candidate
        else:
            break
    return level, results


def load_facts(*, now: datetime | None = None) -> Facts:
    now = now or timezone.now()
    week = now.date() - timedelta(days=6)
    month = now.date() - timedelta(days=29)
    open_findings = Finding.objects.filter(state=Finding.State.OPEN)
    called: dict[str, set[str]] = defaultdict(set)
    for agent_key, tool_key in (
        ToolUsageDaily.objects.filter(day__gte=month).values_list("agent_key", "tool_key").distinct()
    ):
        called[agent_key].add(tool_key)
    grants: dict[int, list[ToolGrant]] = defaultdict(list)
    for grant in ToolGrant.objects.select_related("tool").only(
        "agent_id", "status", "expires_at", "approved_at", "tool__name", "tool__status"
    ):
        grants[grant.agent_id].append(grant)
    latest: dict[str, bool] = {}
    for name, passed in Evaluation.objects.order_by("agent_name", "-reported_at", "-pk").values_list(
        "agent_name", "passed"
    ):
        latest.setdefault(name, passed)
    recent_usage = ToolUsageDaily.objects.filter(day__gte=week)
    return Facts(
        now=now,
        maintained_teams=set(
            TeamMembership.objects.filter(role=TeamMembership.Role.MAINTAINER, user__is_active=True).values_list(
                "team_id", flat=True
            )
        ),
        open_findings_agents=set(open_findings.values_list("agent_key", flat=True)),
        open_findings_tools=set(open_findings.values_list("tool_key", flat=True)),
        recent_agents=set(recent_usage.values_list("agent_key", flat=True))
        | set(ModelUsageDaily.objects.filter(day__gte=week).values_list("agent_key", flat=True)),
        recent_tools=set(recent_usage.values_list("tool_key", flat=True)),
        called_tools=called,
        grants=grants,
        latest_eval=latest,
    )


def scorecards_compute(*, now: datetime | None = None) -> int:
    """Recompute and store every agent's and tool's scorecard; returns how many were written."""
    facts = load_facts(now=now)
    rows = []
    for model, kind in ((Agent, "agent"), (Tool, "tool")):
        for entity in model.objects.defer("risk", "annotations", "links", "tags").iterator(chunk_size=1000):
            level, results = scorecard_for(entity, facts)
            rows.append(Scorecard(kind=kind, name=entity.name, level=level, rules=results, computed_at=facts.now))
    with transaction.atomic():
        Scorecard.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["kind", "name"],
            update_fields=["level", "rules", "computed_at"],
        )
        names = {kind: [row.name for row in rows if row.kind == kind] for kind in ("agent", "tool")}
        for kind, present in names.items():
            Scorecard.objects.filter(kind=kind).exclude(name__in=present).delete()
    return len(rows)
