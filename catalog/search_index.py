"""The catalog's search index: one CatalogEntry row per agent and tool, with the text search reads, kept in step
by the writers in `catalog.services`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from catalog import risk
from catalog.models import (
    Agent,
    CatalogEntry,
    Tool,
)
from catalog.search_cache import invalidate_catalog_counts


def _search_text(*parts: Any) -> str:
    flat: list[str] = []
    for part in parts:
        if isinstance(part, list | tuple):
            flat.extend(str(item) for item in part)
        elif part:
            flat.append(str(part))
    return " ".join(flat).lower()[:20_000]


def _summary(description: str) -> str:
    first = description.strip().split("\n\n", 1)[0].replace("\n", " ")
    return (first[:297] + "...") if len(first) > 300 else first


def agent_entry_values(agent: Agent) -> dict[str, Any]:
    return {
        "name": agent.name,
        "title": agent.title,
        "summary": _summary(agent.description),
        "owner_id": agent.owner_id,
        "risk_tier": agent.risk_tier,
        "risk_rank": risk.Tier(agent.risk_tier).rank,
        "risk_explanation": str(agent.risk.get("explanation", ""))[:500],
        "lifecycle": agent.lifecycle,
        "status": agent.status,
        "autonomy_level": agent.autonomy_level,
        "data_class": agent.data_class or "",
        "tool_kind": "",
        "tags": agent.tags,
        "search_names": _search_text(agent.name, agent.title, agent.tags)[:2000],
        "search_text": _search_text(agent.name, agent.title, agent.description, agent.tags, agent.agent_type),
        "updated_at": timezone.now(),
    }


def tool_entry_values(tool: Tool, capability_names: Iterable[str] | None = None) -> dict[str, Any]:
    names = list(capability_names) if capability_names is not None else [c.name for c in tool.capabilities.all()]
    return {
        "name": tool.name,
        "title": tool.title,
        "summary": _summary(tool.description),
        "owner_id": tool.owner_id,
        "risk_tier": tool.risk_tier,
        "risk_rank": risk.Tier(tool.risk_tier).rank,
        "risk_explanation": str(tool.risk.get("explanation", ""))[:500],
        "lifecycle": tool.lifecycle,
        "status": tool.status,
        "autonomy_level": None,
        "data_class": tool.data_class or "",
        "tool_kind": tool.kind,
        "tags": tool.tags,
        "search_names": _search_text(tool.name, tool.title, tool.tags, names)[:2000],
        "search_text": _search_text(tool.name, tool.title, tool.description, tool.tags, tool.registry_name, names),
        "updated_at": timezone.now(),
    }


def _index_agent(agent: Agent) -> None:
    invalidate_catalog_counts()
    CatalogEntry.objects.update_or_create(kind="agent", entity_id=agent.pk, defaults=agent_entry_values(agent))


def _index_tool(tool: Tool) -> None:
    invalidate_catalog_counts()
    CatalogEntry.objects.update_or_create(kind="tool", entity_id=tool.pk, defaults=tool_entry_values(tool))
