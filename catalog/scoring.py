"""Risk scoring of catalog entities: the facts `catalog.risk` scores, read from agents, tools and grants, and
the stored assessment kept current when those facts change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils import timezone

from catalog import facts, risk
from catalog.models import (
    Agent,
    Capability,
    Tool,
    ToolGrant,
)
from catalog.search_index import _index_agent
from catalog.signals import entity_changed


def tool_facts(tool: Tool, capabilities: Iterable[Capability] | None = None) -> risk.ToolFacts:
    caps = tool.capabilities.all() if capabilities is None else capabilities
    return risk.ToolFacts(
        data_class=tool.data_class,
        reach=tool.reach,
        credential_scope=tool.credential_scope,
        annotations_trusted=tool.annotations_trusted,
        capabilities=tuple(
            risk.CapabilityFacts(
                name=cap.name,
                read_only=cap.read_only,
                destructive=cap.destructive,
                idempotent=cap.idempotent,
                open_world=cap.open_world,
            )
            for cap in caps
        ),
    )


def agent_facts(agent: Agent) -> risk.AgentFacts:
    return risk.AgentFacts(
        autonomy_level=agent.autonomy_level, human_in_loop=agent.human_in_loop, data_class=agent.data_class
    )


def _facts_changed(instance: Agent | Tool, changes: dict[str, Any], previous_tier: str) -> None:
    """The one way a change of an agent's or tool's facts is told: after it was written and re-scored, inside the
    writer's transaction, so listeners (approvals) act on the new facts or not at all."""
    reviewed = (
        facts.tool_reviewed_facts(instance) if isinstance(instance, Tool) else facts.agent_reviewed_facts(instance)
    )
    entity_changed.send(
        sender=type(instance),
        instance=instance,
        changes=changes,
        previous_tier=previous_tier,
        tier=instance.risk_tier,
        fingerprint=reviewed.fingerprint,
    )


def _store_assessment(target: Agent | Tool | ToolGrant, assessment: risk.Assessment) -> bool:
    payload = assessment.to_dict()
    changed = target.risk_tier != assessment.tier.value or target.risk != payload
    target.risk_tier = assessment.tier.value
    target.risk_score = assessment.score
    target.risk = payload
    return changed


def grant_assessment(grant: ToolGrant, tool_fact: risk.ToolFacts | None = None) -> risk.Assessment:
    facts = tool_fact or tool_facts(grant.tool)
    known = {cap.name for cap in facts.capabilities}
    names = [name for name in grant.capability_names if name in known] or None
    return risk.assess_grant(
        agent_facts(grant.agent), facts, capability_names=names, credential_scope=grant.credential_scope or None
    )


def agent_rescore(agent: Agent) -> risk.Assessment:
    now = timezone.now()
    active = [
        (grant.tool.name, risk.Assessment(**_assessment_kwargs(grant.risk)))
        for grant in agent.grants.select_related("tool").filter(status=ToolGrant.Status.APPROVED)
        if (grant.expires_at is None or grant.expires_at > now) and grant.risk
    ]
    assessment = risk.assess_agent(agent_facts(agent), active)
    if _store_assessment(agent, assessment):
        Agent.objects.filter(pk=agent.pk).update(
            risk_tier=agent.risk_tier, risk_score=agent.risk_score, risk=agent.risk, updated_at=timezone.now()
        )
        _index_agent(agent)
    return assessment


def _assessment_kwargs(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tier": risk.Tier(payload["tier"]),
        "score": payload["score"],
        "factors": tuple(risk.Factor(**factor) for factor in payload["factors"]),
        "floors": tuple(payload["floors"]),
        "rubric_version": payload["rubric_version"],
        "driver": payload.get("driver", ""),
    }


def grant_rescore(grant: ToolGrant, tool_fact: risk.ToolFacts | None = None) -> risk.Assessment:
    assessment = grant_assessment(grant, tool_fact)
    if _store_assessment(grant, assessment):
        ToolGrant.objects.filter(pk=grant.pk).update(
            risk_tier=grant.risk_tier, risk_score=grant.risk_score, risk=grant.risk
        )
    return assessment


def tool_rescore(tool: Tool) -> risk.Assessment:
    """Re-score the tool, then its grants, then the agents behind those grants, in this transaction."""
    facts = tool_facts(tool)
    assessment = risk.assess_tool(facts)
    if _store_assessment(tool, assessment):
        Tool.objects.filter(pk=tool.pk).update(risk_tier=tool.risk_tier, risk_score=tool.risk_score, risk=tool.risk)
    agents: dict[int, Agent] = {}
    for grant in tool.grants.select_related("agent", "tool"):
        grant_rescore(grant, facts)
        agents[grant.agent_id] = grant.agent
    for agent in agents.values():
        agent_rescore(agent)
    return assessment
