"""The facts reviewers judge, read from the catalog's rows, and what a grant covers.

`catalog.fingerprints` defines the facts and their fingerprint (pure); this module reads them off agents, tools and
grants. Approvals bind requests to them; `catalog.services` sends their fingerprint with every change of facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from catalog import fingerprints
from catalog.models import Agent, Capability, Tool, ToolGrant

HINTS = fingerprints.HINTS


@dataclass(frozen=True)
class ReviewedFacts:
    """The facts a reviewer judges of a subject (flat, for showing and diffing) and their fingerprint."""

    facts: dict[str, Any]
    fingerprint: str


def tool_reviewed_facts(tool: Tool, capabilities: Iterable[Capability] | None = None) -> ReviewedFacts:
    caps = tool.capabilities.all() if capabilities is None else capabilities
    facts = fingerprints.tool_fact_set(
        name=tool.name,
        owner=tool.owner.name,
        kind=tool.kind,
        version=tool.version,
        endpoint_url=tool.endpoint_url,
        transport=tool.transport,
        data_class=tool.data_class,
        reach=tool.reach,
        credential_scope=tool.credential_scope,
        annotations_trusted=tool.annotations_trusted,
        capabilities=({"name": cap.name, **{hint: getattr(cap, hint) for hint in HINTS}} for cap in caps),
    )
    return ReviewedFacts(facts, fingerprints.digest(facts))


def agent_reviewed_facts(agent: Agent) -> ReviewedFacts:
    facts = fingerprints.agent_fact_set(
        name=agent.name,
        owner=agent.owner.name,
        agent_type=agent.agent_type,
        autonomy_level=agent.autonomy_level,
        human_in_loop=agent.human_in_loop,
        data_class=agent.data_class,
        runtime=agent.runtime,
        models=[model.name for model in agent.models_used.all()],
        environments=agent.environments or [],
        a2a_endpoint=agent.a2a_endpoint,
        version=agent.version,
    )
    return ReviewedFacts(facts, fingerprints.digest(facts))


def grant_reviewed_facts(grant: ToolGrant) -> ReviewedFacts:
    """The grant's own fields with its tool's and agent's facts; the fingerprint covers both ends."""
    tool, agent = tool_reviewed_facts(grant.tool), agent_reviewed_facts(grant.agent)
    own = fingerprints.grant_fact_set(
        environment=grant.environment, capability_names=grant.capability_names, credential_scope=grant.credential_scope
    )
    fingerprint = fingerprints.grant_fingerprint(
        own, tool_fingerprint=tool.fingerprint, agent_fingerprint=agent.fingerprint
    )
    return ReviewedFacts({**own, **tool.facts, **agent.facts}, fingerprint)


def tool_capability_names(tool: Tool) -> list[str]:
    return sorted(tool.capabilities.values_list("name", flat=True))


def grant_covered_on_approval(requested: Iterable[str], tool_capabilities: Iterable[str]) -> list[str]:
    """What an approved grant covers, frozen at approval: the requested capabilities the tool has, or, when none
    were named, every capability the tool has now. One added to the tool later is not covered."""
    available = set(tool_capabilities)
    names = set(requested)
    return sorted(names & available if names else available)


def grant_coverage(grant: ToolGrant, tool_capabilities: Iterable[str]) -> dict[str, list[str]]:
    """The tool's capabilities split into those the grant covers and those it does not (for pages and the API);
    a requested grant with no names is shown as it would be approved."""
    available = sorted(set(tool_capabilities))
    if grant.status == ToolGrant.Status.APPROVED:
        covered = set(grant.capability_names)
    else:
        covered = set(grant_covered_on_approval(grant.capability_names, available))
    return {
        "covered": [name for name in available if name in covered],
        "not_covered": [name for name in available if name not in covered],
        "missing": sorted(covered - set(available)),  # covered by the grant but gone from the tool
    }
