"""What an import may do to entities that already exist: which existing tool a document describes (one MCP server
is one tool, whatever describes it), whether the import's source owns it (catalog.ownership), adoption by a
platform admin, and owner changes (rights on both teams, reported, audited)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Q

from catalog import services
from catalog.formats import ParsedEntity
from catalog.formats.naming import registry_name_to_catalog_name
from catalog.import_report import ImportReport
from catalog.models import Agent, Location, Team, Tool
from catalog.ownership import ImportOrigin, source_claims, source_describe
from portal.audit import audit_record_many
from portal.types import User

# --- one MCP server, one tool ------------------------------------------------------------------------------------


def _server_urls(data: Mapping[str, Any]) -> set[str]:
    urls = {str(data.get("endpoint_url") or "")}
    urls.update(str(remote.get("url") or "") for remote in data.get("remotes") or [] if isinstance(remote, Mapping))
    return {url.rstrip("/") for url in urls if url}


def _registry_name(data: Mapping[str, Any]) -> str:
    value = data.get("registry_name")
    return value if isinstance(value, str) else ""


def _name_is_derived(name: str, registry_name: str) -> bool:
    """The name is the one the portal made up from the registry name (server.json has no catalog name)."""
    return bool(registry_name) and name.lower() == registry_name_to_catalog_name(registry_name)


def _same_server(a: Mapping[str, Any], b: Mapping[str, Any], a_name: str, b_name: str) -> bool:
    """Two descriptions of one MCP server: equal registry names or a shared remote URL, where at least one of them
    had no name of its own (a server.json). Two descriptors that each chose a name are two tools (and equal
    registry names between them are reported as such)."""
    if not (_name_is_derived(a_name, _registry_name(a)) or _name_is_derived(b_name, _registry_name(b))):
        return False
    registry = _registry_name(a)
    return bool(registry and registry == _registry_name(b)) or bool(_server_urls(a) & _server_urls(b))


def _server_keys(data: Mapping[str, Any]) -> list[str]:
    registry = _registry_name(data)
    return ([f"registry:{registry}"] if registry else []) + [f"url:{url}" for url in sorted(_server_urls(data))]


def merge_same_servers(entities: list[ParsedEntity], report: ImportReport) -> list[ParsedEntity]:
    """Tools of one import that describe the same MCP server (equal registry name or a shared remote URL) become
    one: the document that chose a name (catalog-info.yaml) keeps it, and facts only the other one gives (a
    server.json's packages, remotes...) are added to it."""
    kept: list[ParsedEntity] = []
    seen: dict[str, int] = {}  # server key -> position in `kept`
    for entity in entities:
        keys = _server_keys(entity.data) if entity.kind == "tool" else []
        position = next((seen[key] for key in keys if key in seen and _twins(kept[seen[key]], entity)), None)
        if position is None:
            kept.append(entity)
            seen.update(dict.fromkeys(keys, len(kept) - 1))
            continue
        twin = kept[position]
        if _name_is_derived(twin.name, _registry_name(twin.data)) and not _name_is_derived(
            entity.name, _registry_name(entity.data)
        ):
            primary, other = entity, twin
        else:
            primary, other = twin, entity
        primary.data = {**other.data, **primary.data}
        kept[position] = primary
        seen.update(dict.fromkeys(_server_keys(primary.data), position))
        report.merged += 1
        report.warnings.append(
            f"{other.source} document {other.index}: describes the same MCP server as {primary.source} document "
            f"{primary.index}; imported together as tool {primary.name!r}"
        )
    return kept


def _twins(a: ParsedEntity, b: ParsedEntity) -> bool:
    return _same_server(a.data, b.data, a.name, b.name)


def match_existing_servers(
    entities: list[ParsedEntity], existing: dict[str, dict[str, Any]], columns: Iterable[str]
) -> dict[str, str]:
    """Point tool documents whose name is not in the catalog at the existing tool with the same registry name or
    remote URL, so a second description of a server updates it instead of adding a twin. The entity's name
    becomes the tool's, except that a chosen name replaces one the portal derived from the registry name: those
    renames are returned (new name -> the tool's current name) and `existing` is keyed by the name to import."""
    unmatched = [entity for entity in entities if entity.name.lower() not in existing]
    registry_names = {_registry_name(entity.data) for entity in unmatched} - {""}
    urls = {url for entity in unmatched for url in _server_urls(entity.data)}
    if not registry_names and not urls:
        return {}
    lookup = Q(registry_name__in=registry_names) | Q(endpoint_url__in=urls | {f"{url}/" for url in urls})
    candidates = list(Tool.objects.filter(lookup).values(*columns, "owner__name"))
    taken = {entity.name.lower() for entity in entities}
    renames: dict[str, str] = {}
    for entity in unmatched:
        match = next((t for t in candidates if _same_server(t, entity.data, t["name"], entity.name)), None)
        if match is None or match["name"] in taken:
            continue  # unknown server, or another document of this import names that tool itself
        if _name_is_derived(match["name"], match["registry_name"] or "") and not _name_is_derived(
            entity.name, _registry_name(entity.data)
        ):
            renames[entity.name.lower()] = match["name"]
        else:
            entity.name = match["name"]
            if "name" in entity.data:
                entity.data["name"] = match["name"]
        existing[entity.name.lower()] = match
        taken.add(match["name"])
    return renames


def rename_derived(*, tool: Tool, name: str) -> Tool:
    """Give a tool whose name was derived from its registry name the name a descriptor chose (audited); the
    search entry follows with the update the import makes next."""
    if Tool.objects.filter(name=name).exists():
        raise services.CatalogError({"metadata.name": [f"a tool called {name!r} already exists."]})
    previous = tool.name
    Tool.objects.filter(pk=tool.pk).update(name=name)
    tool.refresh_from_db()
    audit_record_many(
        [{"action": "catalog.tool.renamed", "target": tool, "changes": {"name": {"before": previous, "after": name}}}]
    )
    return tool


# --- sources: conflicts and adoption -----------------------------------------------------------------------------


def claim_decision(
    entity: ParsedEntity,
    current: Mapping[str, Any],
    *,
    origin: ImportOrigin,
    adopt: bool,
    is_admin: bool,
    report: ImportReport,
) -> str | None:
    """ "same", "free" or "adopt" when the import may change the entity; None when it may not (reported as a
    conflict, or as a refused adoption)."""
    decision = source_claims(
        kind=current["source_kind"],
        location_id=current["source_location_id"],
        source_key=current["source_key"],
        origin=origin,
        document=entity.source,
    )
    if decision != "other":
        return decision
    owner = describe_current(current)
    if adopt and is_admin:
        return "adopt"
    if adopt:
        report.fail(
            entity,
            entity.source,
            entity.index,
            {"": [f"only platform admins can adopt {entity.kind} {entity.name!r} from {owner}."]},
        )
        return None
    report.conflicts.append(
        {
            "kind": entity.kind,
            "name": entity.name,
            "source": entity.source,
            "index": entity.index,
            "current_source": owner,
        }
    )
    report.fail(
        entity,
        entity.source,
        entity.index,
        {
            "metadata.name": [
                f"{entity.kind} {entity.name!r} belongs to {owner}, not to this import; change it there, or have "
                'a platform admin adopt it here (--adopt, or "adopt": true through the API).'
            ]
        },
    )
    return None


def describe_current(current: Mapping[str, Any]) -> str:
    location = None
    if current["source_location_id"] is not None:
        location = Location.objects.filter(pk=current["source_location_id"]).first()
    return source_describe(kind=current["source_kind"], location=location, source_key=current["source_key"])


def source_values(entity: ParsedEntity, origin: ImportOrigin) -> dict[str, Any]:
    return {
        "source_kind": origin.kind,
        "source_location_id": origin.location.pk if origin.location is not None else None,
        "source_key": f"{entity.source}#{entity.index}"[:300],
    }


def source_record(
    model: type[Agent] | type[Tool],
    instance: Agent | Tool,
    entity: ParsedEntity,
    *,
    origin: ImportOrigin,
    claim: str,
    previous: str,
    report: ImportReport,
) -> None:
    """Record the import's source on an entity it claimed or adopted (audited), or clear a re-seen orphan."""
    values: dict[str, Any] = {"orphaned": False}
    if claim != "same":
        values.update(source_values(entity, origin))
    model.objects.filter(pk=instance.pk).update(**values)
    if claim == "same":
        return
    now = source_describe(kind=origin.kind, location=origin.location, source_key=values["source_key"])
    action = "adopted" if claim == "adopt" else "source_claimed"
    audit_record_many(
        [
            {
                "action": f"catalog.{entity.kind}.{action}",
                "target": instance,
                "changes": {"source": {"before": previous, "after": now}},
            }
        ]
    )
    if claim == "adopt":
        report.adopted.append({"kind": entity.kind, "name": instance.name, "from": previous, "to": now})


# --- owner changes -----------------------------------------------------------------------------------------------


def owner_change_check(*, judge: User | None, instance: Agent | Tool, owner_name: str, entity: ParsedEntity) -> None:
    """A location sync acts as the system: its owner changes need the location creator's rights on both teams
    (the services check a person's rights themselves)."""
    if judge is None:
        return
    new_owner = Team.objects.filter(name=owner_name).first()
    if new_owner is None:
        return  # the services report the unknown team
    if not services.can_edit(judge, instance) or not services.can_create_for(judge, new_owner):
        raise services.CatalogPermissionError(
            f"moving {entity.kind} {instance.name!r} from team {instance.owner.name!r} to {owner_name!r} needs "
            f"edit rights on both teams, which {judge.get_username()} (who added this location) does not have."
        )
