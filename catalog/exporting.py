"""Catalog -> plain descriptor data -> Backstage YAML. The inverse of importing, so a round trip is lossless."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch

from catalog.formats import export_backstage
from catalog.models import Agent, AIModel, Capability, Team, TeamMembership, Tool
from catalog.services import AGENT_FIELDS, TOOL_FIELDS

# The export writes exactly the fields the services accept, so a round trip is lossless.
AGENT_EXPORT_FIELDS = AGENT_FIELDS
TOOL_EXPORT_FIELDS = TOOL_FIELDS
HINTS = ("read_only", "destructive", "idempotent", "open_world")


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Leave out what the catalog does not know, so an import gives back the same unknowns."""
    return {key: value for key, value in values.items() if value not in (None, "", [], {})}


def team_data(team: Team) -> dict[str, Any]:
    members = sorted(m.user.username for m in team.memberships.all())
    data = {"name": team.name, "title": team.title, "description": team.description, "email": team.email}
    if team.parent_id:
        data["parent"] = team.parent.name  # type: ignore[union-attr]
    data["members"] = members
    return _present(data)


def agent_data(agent: Agent) -> dict[str, Any]:
    data = {"name": agent.name, "owner": agent.owner.name}
    data.update({field: getattr(agent, field) for field in AGENT_EXPORT_FIELDS})
    data["models"] = sorted(m.name for m in agent.models_used.all())
    data["calls"] = sorted(a.name for a in agent.calls.all())
    data["tools"] = sorted(agent.requested_tools)
    return _present(data)


def tool_data(tool: Tool) -> dict[str, Any]:
    data = {"name": tool.name, "owner": tool.owner.name}
    data.update({field: getattr(tool, field) for field in TOOL_EXPORT_FIELDS})
    data["capabilities"] = [
        {"name": cap.name, "description": cap.description, **{hint: getattr(cap, hint) for hint in HINTS}}
        for cap in tool.capabilities.all()
    ]
    data["secrets"] = sorted(tool.secret_names)
    return _present(data)


def model_data(model: AIModel) -> dict[str, Any]:
    return _present(
        {
            "name": model.name,
            "title": model.title,
            "provider": model.provider,
            "model_id": model.model_id,
            "hosting": model.hosting,
            "residency": model.residency,
            "data_class": model.data_class,
        }
    )


def catalog_export_entities() -> list[dict[str, Any]]:
    """Every team (with its members as users), model, tool and agent as {"kind", "data"}."""
    teams = Team.objects.select_related("parent").prefetch_related(
        Prefetch("memberships", queryset=TeamMembership.objects.select_related("user"))
    )
    entities: list[dict[str, Any]] = []
    users: dict[str, dict[str, Any]] = {}
    for team in teams.order_by("name"):
        entities.append({"kind": "team", "data": team_data(team)})
        for membership in team.memberships.all():
            user = membership.user
            entry = users.setdefault(
                user.username,
                _present(
                    {"username": user.username, "email": user.email, "display_name": user.get_full_name(), "teams": []}
                ),
            )
            entry.setdefault("teams", []).append(team.name)
    entities.extend({"kind": "user", "data": data} for _, data in sorted(users.items()))
    entities.extend({"kind": "model", "data": model_data(m)} for m in AIModel.objects.order_by("name"))
    tools = Tool.objects.select_related("owner").prefetch_related(
        Prefetch("capabilities", queryset=Capability.objects.order_by("name"))
    )
    entities.extend({"kind": "tool", "data": tool_data(t)} for t in tools.order_by("name").iterator(chunk_size=2000))
    agents = Agent.objects.select_related("owner").prefetch_related("models_used", "calls")
    entities.extend({"kind": "agent", "data": agent_data(a)} for a in agents.order_by("name").iterator(chunk_size=2000))
    return entities


def catalog_export_backstage(*, namespace: str = "default") -> str:
    return export_backstage(catalog_export_entities(), namespace=namespace)
