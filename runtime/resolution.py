"""What the catalog says about the agents and tools one batch of spans names: read in a handful of queries per
batch (never per span), then matched in memory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from catalog.grant_rules import GrantFacts
from catalog.models import Agent, Capability, Tool, ToolGrant
from runtime.attribution import Observation


@dataclass(frozen=True, slots=True)
class KnownAgent:
    id: int
    name: str
    owner: str


@dataclass(frozen=True, slots=True)
class KnownTool:
    id: int
    name: str
    risk_tier: str
    capabilities: tuple[str, ...]


@dataclass
class CatalogView:
    agents: dict[str, KnownAgent] = field(default_factory=dict)
    tools_by_key: dict[str, KnownTool] = field(default_factory=dict)  # name, registry name, endpoint host
    grants: dict[tuple[int, int], list[GrantFacts]] = field(default_factory=lambda: defaultdict(list))
    granted_tools: dict[int, list[KnownTool]] = field(default_factory=lambda: defaultdict(list))

    def tool_for(self, observation: Observation, agent: KnownAgent | None) -> tuple[KnownTool | None, str, str]:
        """(catalog tool or None, tool key, capability) for a tool call."""
        capability = observation.tool_name
        for key in (observation.server, observation.server_address):
            if key:
                tool = self.tools_by_key.get(key.lower())
                return (tool, tool.name if tool else key.lower()[:200], capability)
        if capability:
            tool = self.tools_by_key.get(capability.lower())
            if tool is not None and tool.name == capability.lower():
                return tool, tool.name, ""  # the span names the catalog tool itself, not one of its operations
            if agent is not None:
                owners = [t for t in self.granted_tools.get(agent.id, []) if capability in t.capabilities]
                if len(owners) == 1:
                    return owners[0], owners[0].name, capability
        return None, (capability or "unknown").lower()[:200], capability


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def catalog_view(observations: Iterable[Observation]) -> CatalogView:
    observations = list(observations)
    view = CatalogView()
    names = {obs.agent for obs in observations if obs.agent}
    for agent_id, name, owner in Agent.objects.filter(name__in=names).values_list("id", "name", "owner__name"):
        view.agents[name] = KnownAgent(agent_id, name, owner)
    calls = [obs for obs in observations if obs.is_tool_call]
    if not calls and not view.agents:
        return view
    keys = {key.lower() for obs in calls for key in (obs.server, obs.tool_name) if key}
    hosts = {obs.server_address for obs in calls if obs.server_address}
    agent_ids = [agent.id for agent in view.agents.values()]
    grant_rows = list(
        ToolGrant.objects.filter(agent_id__in=agent_ids).values_list(
            "id", "agent_id", "tool_id", "environment", "status", "capability_names", "expires_at"
        )
    )
    tool_ids = {row[2] for row in grant_rows}
    tools = Tool.objects.filter(name__in=keys) | Tool.objects.filter(registry_name__in=keys)
    tools = tools | Tool.objects.filter(pk__in=tool_ids)
    for host in hosts:
        tools = tools | Tool.objects.filter(endpoint_url__icontains=f"//{host}")
    tool_rows = list(tools.distinct().values_list("id", "name", "registry_name", "endpoint_url", "risk_tier"))
    capabilities: dict[int, list[str]] = defaultdict(list)
    for tool_id, name in Capability.objects.filter(tool_id__in=[row[0] for row in tool_rows]).values_list(
        "tool_id", "name"
    ):
        capabilities[tool_id].append(name)
    by_id: dict[int, KnownTool] = {}
    for tool_id, name, registry_name, endpoint_url, tier in tool_rows:
        tool = KnownTool(tool_id, name, tier, tuple(sorted(capabilities[tool_id])))
        by_id[tool_id] = tool
        view.tools_by_key[name.lower()] = tool
        if registry_name:
            view.tools_by_key[registry_name.lower()] = tool
        host = _host(endpoint_url)
        if host in hosts:
            view.tools_by_key.setdefault(host, tool)
    for grant_id, agent_id, tool_id, environment, status, names_granted, expires_at in grant_rows:
        tool = by_id[tool_id]
        # An empty list on the grant covers every capability of the tool (catalog.models.ToolGrant).
        covered = tuple(names_granted) if names_granted else tool.capabilities
        view.grants[(agent_id, tool_id)].append(GrantFacts(grant_id, environment, status, covered, expires_at))
        view.granted_tools[agent_id].append(tool)
    return view
