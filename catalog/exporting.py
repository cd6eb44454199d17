"""Catalog -> plain descriptor data -> Backstage YAML. The inverse of importing, so a round trip is lossless."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db.models import Prefetch

from catalog.formats import ExportError, export_backstage
from catalog.models import Agent, AIModel, Capability, Team, TeamMembership, Tool
from catalog.services import AGENT_FIELDS, TOOL_FIELDS

# The export writes exactly the fields the services accept, so a round trip is lossless.
AGENT_EXPORT_FIELDS = AGENT_FIELDS
TOOL_EXPORT_FIELDS = TOOL_FIELDS
HINTS = ("read_only", "destructive", "idempotent", "open_world")

logger = logging.getLogger(__name__)


def _strings(values: Any) -> list[str]:
    return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []


def _objects(values: Any) -> list[dict[str, Any]]:
    return [dict(value) for value in values if isinstance(value, Mapping)] if isinstance(values, list) else []


def _skill(item: Mapping[str, Any]) -> dict[str, Any] | None:
    skill_id = item.get("id")
    if not isinstance(skill_id, str) or not skill_id.strip():
        return None
    name = item.get("name")
    description = item.get("description")
    return {
        "id": skill_id,
        "name": name if isinstance(name, str) and name.strip() else skill_id,
        "description": description if isinstance(description, str) else "",
        "tags": _strings(item.get("tags")),
    }


def _stored_lists(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON columns as the descriptor format takes them. Stored values can be malformed (written around the
    services, or by an older release): what cannot be read is left out, logged, and the entity is still exported."""
    clean = dict(data)
    for key in ("tags", "environments"):
        if key in clean:
            clean[key] = _strings(clean[key])
    if "annotations" in clean:
        stored = clean["annotations"]
        mapping = stored if isinstance(stored, Mapping) else {}
        clean["annotations"] = {str(k): v for k, v in mapping.items() if isinstance(v, str)}
    if "links" in clean:
        clean["links"] = [
            {"url": link["url"], "title": link.get("title") if isinstance(link.get("title"), str) else ""}
            for link in _objects(clean["links"])
            if isinstance(link.get("url"), str)
        ]
    if "skills" in clean:
        clean["skills"] = [skill for skill in map(_skill, _objects(clean["skills"])) if skill is not None]
    for key in ("packages", "remotes"):
        if key in clean:
            clean[key] = _objects(clean[key])
    if clean != data:
        logger.warning("export: left out malformed stored values of %s", name)
    return clean


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
    data["tools"] = sorted(_strings(agent.requested_tools))
    return _present(_stored_lists(agent.name, data))


def tool_data(tool: Tool) -> dict[str, Any]:
    data = {"name": tool.name, "owner": tool.owner.name}
    data.update({field: getattr(tool, field) for field in TOOL_EXPORT_FIELDS})
    data["capabilities"] = [
        {"name": cap.name, "description": cap.description, **{hint: getattr(cap, hint) for hint in HINTS}}
        for cap in tool.capabilities.all()
    ]
    data["secrets"] = sorted(_strings(tool.secret_names))
    return _present(_stored_lists(tool.name, data))


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
    """The whole catalog as Backstage YAML. An entity Backstage would refuse (stored facts the format cannot say)
    is left out and logged, never the whole export: one bad row must not stop every consumer."""
    entities = catalog_export_entities()
    try:
        return export_backstage(entities, namespace=namespace)
    except ExportError:
        exportable = []
        for entity in entities:
            try:
                export_backstage([entity], namespace=namespace)
            except ExportError as error:
                logger.warning("export: left out %s %r: %s", entity["kind"], entity["data"].get("name"), error)
            else:
                exportable.append(entity)
        return export_backstage(exportable, namespace=namespace)
