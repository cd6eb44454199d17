"""Catalog writes. Every change is one function in a transaction: validate, write, re-score, index, audit.

Data comes in the plain shape of `catalog.formats.types` (the same keys for forms, the API and imports), so a
descriptor, a form and an API call cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from catalog import facts
from catalog.models import (
    Agent,
    AIModel,
    Capability,
    CatalogEntry,
    HintsAttestation,
    Team,
    Tool,
    ToolGrant,
)
from catalog.scoring import _facts_changed, agent_rescore, grant_rescore, tool_rescore
from catalog.search_cache import invalidate_catalog_counts
from catalog.search_index import _index_agent, _index_tool
from catalog.signals import owner_changed
from catalog.teams import maintains_team
from portal.audit import audit_record, field_changes
from portal.errors import Conflict, InvalidInput, PermissionDenied
from portal.roles import user_is_platform_admin
from portal.types import User

AGENT_FIELDS = (
    "title",
    "description",
    "lifecycle",
    "agent_type",
    "autonomy_level",
    "human_in_loop",
    "data_class",
    "runtime",
    "repository_url",
    "a2a_endpoint",
    "a2a_protocol_version",
    "provider_org",
    "version",
    "environments",
    "tags",
    "links",
    "annotations",
    "skills",
)
TOOL_FIELDS = (
    "registry_name",
    "title",
    "description",
    "kind",
    "version",
    "lifecycle",
    "endpoint_url",
    "transport",
    "auth_scheme",
    "credential_scope",
    "reach",
    "data_class",
    "repository_url",
    "definition",
    "tags",
    "links",
    "annotations",
    "packages",
    "remotes",
)
MODEL_FIELDS = ("title", "provider", "model_id", "hosting", "residency", "data_class")
# Facts the rubric reads: a change to any of them re-scores.
TOOL_RISK_FIELDS = ("data_class", "reach", "credential_scope", "annotations_trusted")
AGENT_RISK_FIELDS = ("autonomy_level", "human_in_loop", "data_class")
# Fields stored as NULL when unknown, so the rubric can fail closed.
NULLABLE_FACTS = {"autonomy_level", "human_in_loop", "data_class", "credential_scope", "reach", "registry_name"}
CAPABILITY_HINTS = ("read_only", "destructive", "idempotent", "open_world")
DANGEROUS_MARKUP = re.compile(r"<\s*/?\s*(script|iframe|object|embed|style|form)\b|\bon[a-z]+\s*=|javascript:", re.I)
MAX_DESCRIPTION = 20_000
# Names the catalog's own URLs use (agents/new/, import/ ...): an entity by that name would be unreachable.
RESERVED_NAMES = {"new", "import", "edit", "api", "teams", "agents", "tools"}


class CatalogError(InvalidInput):
    """Bad input; `errors` maps each field to what was wrong and what is accepted."""


class CatalogPermissionError(PermissionDenied):
    pass


class CatalogConflict(Conflict):
    pass


@dataclass(frozen=True)
class HeldChange:
    """A change agent_update did not write because it needs an approval first (raising autonomy to 4 or 5)."""

    field: str
    current: Any
    requested: Any
    # The approval request that holds it (applied when approved), or None when none could be filed (no person).
    request_id: int | None
    message: str
    request_api_url: str = ""  # the request in the REST API (the agent's page links it for people)


# Raising an agent's autonomy to these levels (from a lower or unknown one) waits for an approval.
AUTONOMY_NEEDS_APPROVAL = (4, 5)
# Set by the runtime app (AppConfig.ready), which owns the autonomy gate: called with actor, agent (locked, written
# with its current level), current and requested (levels) for such a raise; files the approval request that holds
# it and returns the HeldChange. Unset (no app to approve it), the raise is written at once. The catalog knows
# nothing of approvals (import-linter contract).
autonomy_gate: Callable[..., HeldChange] | None = None


@dataclass(frozen=True)
class EntityAccess:
    """What a user may do with one agent or tool: change it (`can_edit`), and file requests for its owner team
    (`maintains_owner`, as `can_create_for(user, entity.owner)` answers)."""

    can_edit: bool
    maintains_owner: bool


def entity_access(user: User | AnonymousUser, entity: Agent | Tool) -> EntityAccess:
    """Platform admins may do everything; the owning team's maintainers may change the entity because ownership is
    the grant; and an active user holding guardian's change permission on the object (given explicitly, e.g. to
    another team's group) may change it too, asked through guardian's own `get_objects_for_user`. The membership
    is read once for both answers: asked as two questions (`user.has_perm` through catalog.permissions and
    guardian's backend, then `can_create_for`) it cost the entity page four queries and 3 of its 16 ms of CPU
    (bench.catalog, entity page)."""
    if not user.is_authenticated:
        return EntityAccess(can_edit=False, maintains_owner=False)
    if user_is_platform_admin(user):
        return EntityAccess(can_edit=True, maintains_owner=True)
    maintains = maintains_team(user_id=user.pk, team_id=entity.owner_id)
    # An inactive user holds no object permissions (as Django's and guardian's backends answer) but stays on
    # record as a maintainer of the team.
    if not user.is_active:
        return EntityAccess(can_edit=False, maintains_owner=maintains)
    if maintains:
        return EntityAccess(can_edit=True, maintains_owner=True)
    model = type(entity)
    explicit = get_objects_for_user(
        user, f"catalog.change_{model._meta.model_name}", klass=model, with_superuser=False, accept_global_perms=False
    )
    return EntityAccess(can_edit=explicit.filter(pk=entity.pk).exists(), maintains_owner=False)


def can_edit(user: User | AnonymousUser, entity: Agent | Tool) -> bool:
    """Whether `user` may change the agent or tool: `entity_access`. The same answer as Django's object-permission
    API (`user.has_perm("catalog.change_tool", tool)`) gives through catalog.permissions and guardian's backend."""
    return entity_access(user, entity).can_edit


def can_create_for(user: User | AnonymousUser, team: Team) -> bool:
    if not user.is_authenticated:
        return False
    if user_is_platform_admin(user):
        return True
    return maintains_team(user_id=user.pk, team_id=team.pk)


def _validate_description(description: str) -> list[str]:
    problems = []
    if len(description) > MAX_DESCRIPTION:
        problems.append(f"is {len(description)} characters long; at most {MAX_DESCRIPTION} are accepted.")
    if DANGEROUS_MARKUP.search(description):
        problems.append(
            "contains HTML that is never shown (script, iframe, style, event handlers or javascript: links); "
            "use Markdown."
        )
    return problems


def _resolve_owner(name: Any, errors: dict[str, list[str]]) -> Team | None:
    if not name:
        errors["owner"] = ["is required: the name of the team that owns this."]
        return None
    team = Team.objects.filter(name__iexact=str(name).removeprefix("group:")).first()
    if team is None:
        errors["owner"] = [f"team {name!r} does not exist; create it first or pick an existing team."]
    return team


def _clean_list_of_strings(value: Any, field: str, errors: dict[str, list[str]]) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors[field] = ["must be a list of strings."]
        return []
    return value


def _model_errors(exc: ValidationError, rename: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    rename = rename or {}
    return {rename.get(field, field): [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}


def _assign(instance: Any, fields: Iterable[str], data: Mapping[str, Any]) -> None:
    for name in fields:
        if name not in data:
            continue
        value = data[name]
        if value is None and name not in NULLABLE_FACTS:
            value = [] if name in {"tags", "links", "environments", "skills", "packages", "remotes"} else ""
            if name == "annotations":
                value = {}
        if value == "" and name in NULLABLE_FACTS:
            value = None
        setattr(instance, name, value)


def _snapshot(instance: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in fields}


def capabilities_hash(capabilities: Iterable[Mapping[str, Any]]) -> str:
    canonical = sorted(
        ({"name": cap["name"], **{hint: cap.get(hint) for hint in CAPABILITY_HINTS}} for cap in capabilities),
        key=lambda cap: cap["name"],
    )
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _clean_capabilities(value: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        errors["capabilities"] = ["must be a list of {name, description, read_only, destructive, ...}."]
        return None
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, cap in enumerate(value):
        if not isinstance(cap, Mapping) or not isinstance(cap.get("name"), str) or not cap["name"].strip():
            errors[f"capabilities[{position}].name"] = ["is required."]
            continue
        name = cap["name"].strip()[:200]
        if name in seen:
            errors[f"capabilities[{position}].name"] = [f"{name!r} appears twice."]
            continue
        seen.add(name)
        item = {"name": name, "description": str(cap.get("description") or "")}
        for hint in CAPABILITY_HINTS:
            hint_value = cap.get(hint)
            if hint_value is not None and not isinstance(hint_value, bool):
                errors[f"capabilities[{position}].{hint}"] = ["must be true, false or absent."]
            item[hint] = hint_value
        cleaned.append(item)
    return cleaned


def _agent_relations(
    data: Mapping[str, Any], errors: dict[str, list[str]], *, strict_calls: bool = True
) -> dict[str, Any]:
    relations: dict[str, Any] = {}
    if "models" in data:
        names = _clean_list_of_strings(data["models"], "models", errors)
        found = {m.name: m for m in AIModel.objects.filter(name__in=[n.lower() for n in names])}
        missing = [n for n in names if n.lower() not in found]
        if missing:
            errors["models"] = [f"unknown model(s): {', '.join(missing)}; register them in the catalog first."]
        relations["models"] = list(found.values())
    if "calls" in data:
        names = _clean_list_of_strings(data["calls"], "calls", errors)
        relations["calls"] = list(Agent.objects.filter(name__in=[n.lower() for n in names]))
        relations["calls_missing"] = sorted({n.lower() for n in names} - {a.name for a in relations["calls"]})
        if relations["calls_missing"] and strict_calls:
            errors["calls"] = [f"unknown agent(s): {', '.join(relations['calls_missing'])}."]
    if "tools" in data:
        relations["tools"] = sorted(set(_clean_list_of_strings(data["tools"], "tools", errors)))
    return relations


def _validate_links(links: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(links, list):
        errors["links"] = ["must be a list of {url, title}."]
        return
    for index, link in enumerate(links):
        url = str(link.get("url", "")) if isinstance(link, Mapping) else ""
        if not url.lower().startswith(("https://", "http://")):
            errors[f"links[{index}].url"] = [f"{url[:60]!r} is not an http(s) URL."]


def _has_nul(value: Any) -> bool:
    """A NUL character anywhere in the strings of a nested value (iterative: imports run it on every document)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def _validate_entity(instance: Agent | Tool, errors: dict[str, list[str]], data: Mapping[str, Any]) -> None:
    if "links" in data and data["links"] is not None:
        _validate_links(data["links"], errors)
    if "description" in data and isinstance(data["description"], str):
        problems = _validate_description(data["description"])
        if problems:
            errors["description"] = problems
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        # PostgreSQL stores no NUL character in text or JSON; refuse it by field instead of failing the write.
        if _has_nul(value):
            errors.setdefault(field.name, []).append("contains a NUL character (\\0), which cannot be stored.")
    try:
        # Uniqueness is checked by the callers (in one query per batch); constraint validation would query per field.
        instance.full_clean(
            exclude=["owner", "risk", "source_location"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        for name, msgs in _model_errors(exc).items():
            errors.setdefault(name, []).extend(msgs)


def _check_name_free(
    model: type[Agent] | type[Tool], name: str, exclude_pk: int | None, errors: dict[str, list[str]]
) -> None:
    if name.lower() in RESERVED_NAMES:
        errors["name"] = [f"{name!r} is reserved by the portal's URLs; choose another name."]
        return
    clash = model.objects.filter(name__iexact=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        errors["name"] = [f"{model._meta.verbose_name} {name!r} already exists; names are unique (case-insensitive)."]


@transaction.atomic
def agent_create(*, actor: User | None, data: Mapping[str, Any], check_permission: bool = True) -> Agent:
    errors: dict[str, list[str]] = {}
    name = str(data.get("name") or "").strip()
    owner = _resolve_owner(data.get("owner"), errors)
    if owner is not None and check_permission and actor is not None and not can_create_for(actor, owner):
        raise CatalogPermissionError(f"Only maintainers of team {owner.name!r} or platform admins can add its agents.")
    agent = Agent(name=name, owner=owner) if owner else Agent(name=name)
    _assign(agent, AGENT_FIELDS, data)
    relations = _agent_relations(data, errors)
    _validate_entity(agent, errors, data)
    if name:
        _check_name_free(Agent, name, None, errors)
    if errors:
        raise CatalogError(errors)
    agent.requested_tools = relations.get("tools", [])
    try:
        with transaction.atomic():
            agent.save()
    except IntegrityError as exc:
        raise CatalogError({"name": [f"agent {name!r} already exists."]}) from exc
    if relations.get("models"):
        agent.models_used.set(relations["models"])
    if relations.get("calls"):
        agent.calls.set(relations["calls"])
    agent_rescore(agent)
    _index_agent(agent)
    audit_record(
        action="catalog.agent.created",
        target=agent,
        changes={
            field: {"before": None, "after": getattr(agent, field)}
            for field in ("name", "owner_id", *AGENT_RISK_FIELDS)
        },
    )
    return agent


@transaction.atomic
def agent_update(
    *,
    actor: User | None,
    agent: Agent,
    data: Mapping[str, Any],
    check_permission: bool = True,
    strict_calls: bool = True,
    approved_in: int | None = None,
) -> Agent:
    """Change an agent's facts. A raise of its autonomy that the gate (`autonomy_gate`) holds is not written: the
    agent keeps its level, the rest of the change is written, and the returned agent's `held_changes` say where the
    raise waits. `approved_in`: the id of the approved request whose change this writes (past the gate)."""
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    if check_permission and actor is not None and not can_edit(actor, agent):
        raise CatalogPermissionError(f"Only maintainers of team {agent.owner.name!r} or platform admins can edit it.")
    errors: dict[str, list[str]] = {}
    tracked = (*AGENT_FIELDS, "owner_id", "status", "requested_tools")
    before = _snapshot(agent, tracked)
    before_relations = {
        "models": sorted(agent.models_used.values_list("name", flat=True)),
        "calls": sorted(agent.calls.values_list("name", flat=True)),
    }
    previous_owner = agent.owner
    if "name" in data and str(data["name"]).lower() != agent.name:
        errors["name"] = ["cannot be changed: other systems refer to the agent by name."]
    if "owner" in data:
        owner = _resolve_owner(data["owner"], errors)
        if owner is not None and owner != previous_owner:
            if check_permission and actor is not None and not can_create_for(actor, owner):
                errors["owner"] = [f"you are not a maintainer of team {owner.name!r}."]
            agent.owner = owner
    _assign(agent, AGENT_FIELDS, data)
    relations = _agent_relations(data, errors, strict_calls=strict_calls)
    _validate_entity(agent, errors, data)
    if errors:
        raise CatalogError(errors)
    current_level, requested_level = before["autonomy_level"], agent.autonomy_level
    hold = approved_in is None and autonomy_gate is not None and _raises_gated(current_level, requested_level)
    if hold:  # written with its current level; the gate files the raise below, once the rest is written
        agent.autonomy_level = current_level
    if "tools" in relations:
        agent.requested_tools = relations["tools"]
    agent.save()
    if "models" in relations:
        agent.models_used.set(relations["models"])
    if "calls" in relations:
        agent.calls.set(relations["calls"])
    after = _snapshot(agent, tracked)
    changes = field_changes(before, after)
    after_relations = {
        "models": sorted(agent.models_used.values_list("name", flat=True)),
        "calls": sorted(agent.calls.values_list("name", flat=True)),
    }
    changes.update(field_changes(before_relations, after_relations))
    if any(field in changes for field in AGENT_RISK_FIELDS):
        for grant in agent.grants.select_related("tool", "agent"):
            grant.agent = agent
            grant_rescore(grant)
    previous_tier = agent.risk_tier
    agent_rescore(agent)
    _index_agent(agent)
    if changes:
        audit = {**changes, "approved_in": approved_in} if approved_in is not None else changes
        audit_record(action="catalog.agent.updated", target=agent, changes=audit)
        _facts_changed(agent, changes, previous_tier)
    if agent.owner_id != previous_owner.pk:
        owner_changed.send(sender=Agent, instance=agent, previous_owner=previous_owner, owner=agent.owner)
    agent.held_changes = []
    if hold:
        assert autonomy_gate is not None
        # In this transaction: the request and the rest of the change land together, or neither does.
        agent.held_changes = [autonomy_gate(actor=actor, agent=agent, current=current_level, requested=requested_level)]
    return agent


def _raises_gated(current: int | None, requested: int | None) -> bool:
    """A raise into the levels that need an approval; lowering, or raising within 1-3, is written at once."""
    return requested is not None and requested in AUTONOMY_NEEDS_APPROVAL and (current is None or requested > current)


@transaction.atomic
def agent_delete(*, actor: User | None, agent: Agent, check_permission: bool = True) -> None:
    if check_permission and actor is not None and not can_edit(actor, agent):
        raise CatalogPermissionError(f"Only maintainers of team {agent.owner.name!r} or platform admins can delete it.")
    pk, name = agent.pk, agent.name
    CatalogEntry.objects.filter(kind="agent", entity_id=pk).delete()
    invalidate_catalog_counts()
    agent.delete()
    audit_record(action="catalog.agent.deleted", object_type="catalog.agent", object_id=pk, object_repr=name)


@transaction.atomic(savepoint=False)  # called inside workflows' transactions; no savepoint needed
def agent_set_status(*, agent: Agent, status: str, reason: str = "", locked: bool = False) -> Agent:
    """Lifecycle status changes driven by workflows (onboarding, activation, suspension). `locked`: see
    _set_status."""
    return _set_status(agent, status, reason, _index_agent, locked=locked)


def _write_capabilities(tool: Tool, capabilities: list[dict[str, Any]]) -> bool:
    """Replace the capability list when anything in it changed; returns whether its hash (names and hints,
    what the risk and approvals are bound to) changed. Description edits are kept without re-review."""
    new_hash = capabilities_hash(capabilities)
    current = sorted(
        (
            {"name": c.name, "description": c.description, **{h: getattr(c, h) for h in CAPABILITY_HINTS}}
            for c in tool.capabilities.all()
        ),
        key=lambda cap: cap["name"],
    )
    if new_hash == tool.capabilities_hash and current == sorted(capabilities, key=lambda cap: cap["name"]):
        return False
    tool.capabilities.all().delete()
    Capability.objects.bulk_create(Capability(tool=tool, **cap) for cap in capabilities)
    hash_changed = new_hash != tool.capabilities_hash
    tool.capabilities_hash = new_hash
    Tool.objects.filter(pk=tool.pk).update(capabilities_hash=new_hash)
    return hash_changed


def _clean_secrets(data: Mapping[str, Any], errors: dict[str, list[str]]) -> list[str] | None:
    if "secrets" not in data:
        return None
    names = _clean_list_of_strings(data["secrets"], "secrets", errors)
    for name in names:
        if len(name) > 200 or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            errors["secrets"] = [
                f"{name[:40]!r} is not a secret NAME (letters, digits, '_', '-', '.'); values are never stored."
            ]
    return sorted(set(names))


@transaction.atomic
def tool_create(*, actor: User | None, data: Mapping[str, Any], check_permission: bool = True) -> Tool:
    errors: dict[str, list[str]] = {}
    name = str(data.get("name") or "").strip()
    owner = _resolve_owner(data.get("owner"), errors)
    if owner is not None and check_permission and actor is not None and not can_create_for(actor, owner):
        raise CatalogPermissionError(f"Only maintainers of team {owner.name!r} or platform admins can add its tools.")
    tool = Tool(name=name, owner=owner) if owner else Tool(name=name)
    _assign(tool, TOOL_FIELDS, data)
    capabilities = _clean_capabilities(data.get("capabilities", []), errors) or []
    secrets = _clean_secrets(data, errors)
    _validate_entity(tool, errors, data)
    if name:
        _check_name_free(Tool, name, None, errors)
    if tool.registry_name and Tool.objects.filter(registry_name=tool.registry_name).exists():
        errors["registry_name"] = [f"a tool with registry name {tool.registry_name!r} already exists."]
    if errors:
        raise CatalogError(errors)
    tool.secret_names = secrets or []
    try:
        with transaction.atomic():
            tool.save()
    except IntegrityError as exc:
        raise CatalogError({"name": [f"tool {name!r} already exists."]}) from exc
    _write_capabilities(tool, capabilities)
    tool_rescore(tool)
    _index_tool(tool)
    audit_record(
        action="catalog.tool.created",
        target=tool,
        changes={
            **{
                field: {"before": None, "after": getattr(tool, field)}
                for field in ("name", "owner_id", "version", *TOOL_RISK_FIELDS)
            },
            "capabilities_hash": {"before": None, "after": tool.capabilities_hash},
        },
    )
    return tool


@transaction.atomic
def tool_update(*, actor: User | None, tool: Tool, data: Mapping[str, Any], check_permission: bool = True) -> Tool:
    tool = Tool.objects.select_for_update().get(pk=tool.pk)
    if check_permission and actor is not None and not can_edit(actor, tool):
        raise CatalogPermissionError(f"Only maintainers of team {tool.owner.name!r} or platform admins can edit it.")
    errors: dict[str, list[str]] = {}
    tracked = (*TOOL_FIELDS, "owner_id", "status", "secret_names", "annotations_trusted")
    before = _snapshot(tool, tracked)
    previous_owner = tool.owner
    if "name" in data and str(data["name"]).lower() != tool.name:
        errors["name"] = ["cannot be changed: grants and registries refer to the tool by name."]
    if "owner" in data:
        owner = _resolve_owner(data["owner"], errors)
        if owner is not None and owner != previous_owner:
            if check_permission and actor is not None and not can_create_for(actor, owner):
                errors["owner"] = [f"you are not a maintainer of team {owner.name!r}."]
            tool.owner = owner
    _assign(tool, TOOL_FIELDS, data)
    capabilities = _clean_capabilities(data["capabilities"], errors) if "capabilities" in data else None
    secrets = _clean_secrets(data, errors)
    _validate_entity(tool, errors, data)
    if (
        tool.registry_name
        and before["registry_name"] != tool.registry_name
        and Tool.objects.filter(registry_name=tool.registry_name).exclude(pk=tool.pk).exists()
    ):
        errors["registry_name"] = [f"a tool with registry name {tool.registry_name!r} already exists."]
    if errors:
        raise CatalogError(errors)
    if secrets is not None:
        tool.secret_names = secrets
    before_hash = tool.capabilities_hash
    tool.save()
    capabilities_changed = capabilities is not None and _write_capabilities(tool, capabilities)
    if capabilities_changed:
        # A changed capability list has not been attested: its hints stop counting until reviewed again.
        _invalidate_attestations(tool, reason="the capabilities changed")
    changes = field_changes(before, _snapshot(tool, tracked))
    if capabilities_changed:
        changes["capabilities_hash"] = {"before": before_hash, "after": tool.capabilities_hash}
    previous_tier = tool.risk_tier
    tool_rescore(tool)
    _index_tool(tool)
    if changes:
        audit_record(action="catalog.tool.updated", target=tool, changes=changes)
        _facts_changed(tool, changes, previous_tier)
    if tool.owner_id != previous_owner.pk:
        owner_changed.send(sender=Tool, instance=tool, previous_owner=previous_owner, owner=tool.owner)
    return tool


def _invalidate_attestations(tool: Tool, *, reason: str) -> None:
    HintsAttestation.objects.filter(tool=tool, invalidated_at__isnull=True).update(
        invalidated_at=timezone.now(), invalidated_reason=reason[:300]
    )
    if tool.annotations_trusted:
        tool.annotations_trusted = False
        Tool.objects.filter(pk=tool.pk).update(annotations_trusted=False)


@transaction.atomic(savepoint=False)  # called inside workflows' transactions; no savepoint needed
def tool_attest_annotations(*, tool: Tool, attested: bool = True) -> Tool:
    """Set whether the rubric trusts the capability hints; a change re-scores and is told like any fact change.

    People attest through `catalog.attestation.tool_attest_hints` (approvals checks who may, and gathers the live
    evidence); this is
    the switch itself, also used by seeding and tests."""
    tool = Tool.objects.select_for_update().select_related("owner").get(pk=tool.pk)
    if tool.annotations_trusted == attested:
        return tool
    previous_tier = tool.risk_tier
    tool.annotations_trusted = attested
    tool.save(update_fields=["annotations_trusted", "updated_at"])
    if not attested:
        _invalidate_attestations(tool, reason="attestation withdrawn")
    tool_rescore(tool)
    _index_tool(tool)
    changes = {"annotations_trusted": {"before": not attested, "after": attested}}
    audit_record(
        action="catalog.tool.annotations_attested" if attested else "catalog.tool.annotations_untrusted",
        target=tool,
        changes={**changes, "capabilities_hash": tool.capabilities_hash},
    )
    _facts_changed(tool, changes, previous_tier)
    return tool


@transaction.atomic(savepoint=False)  # called inside workflows' transactions; no savepoint needed
def tool_set_status(*, tool: Tool, status: str, reason: str = "", locked: bool = False) -> Tool:
    """Review status changes driven by workflows (pending review, approved, rejected). `locked`: see _set_status."""
    return _set_status(tool, status, reason, _index_tool, locked=locked)


def _set_status(entity: Any, status: str, reason: str, index: Any, *, locked: bool = False) -> Any:
    """Lock, change the status if it differs, re-index and audit; a repeated call changes nothing. `locked=True`:
    the caller's transaction holds the row's lock and read `entity` under it (an approval transition locks its
    subject first), so its status is current and the row is neither locked nor read again."""
    model = type(entity)
    allowed = model.Status.values
    if status not in allowed:
        raise CatalogError({"status": [f"must be one of {', '.join(allowed)}."]})
    row = entity
    if not locked:
        # Only what a status change reads and writes: it runs inside every approval transition.
        row = model.objects.select_for_update().only("id", "name", "status", "updated_at").get(pk=entity.pk)
    if row.status == status:
        return entity
    before = row.status
    row.status = status
    row.save(update_fields=["status", "updated_at"])
    entity.status, entity.updated_at = status, row.updated_at  # the caller's instance follows
    # Only the status moved (risk does not depend on it): update the search row in place; no row yet, full index.
    entry = CatalogEntry.objects.filter(kind=model._meta.model_name, entity_id=entity.pk)
    if entry.update(status=status, updated_at=row.updated_at):
        invalidate_catalog_counts()
    else:
        index(model.objects.get(pk=entity.pk))
    audit_record(
        action=f"catalog.{model._meta.model_name}.status_changed",
        target=row,
        changes={"status": {"before": before, "after": status}, "reason": reason},
    )
    return entity


@transaction.atomic
def tool_delete(*, actor: User | None, tool: Tool, check_permission: bool = True) -> None:
    if check_permission and actor is not None and not can_edit(actor, tool):
        raise CatalogPermissionError(f"Only maintainers of team {tool.owner.name!r} or platform admins can delete it.")
    if tool.grants.exclude(
        status__in=[ToolGrant.Status.REVOKED, ToolGrant.Status.DENIED, ToolGrant.Status.EXPIRED]
    ).exists():
        raise CatalogConflict("The tool still has open or active grants; revoke them first.")
    pk, name = tool.pk, tool.name
    CatalogEntry.objects.filter(kind="tool", entity_id=pk).delete()
    invalidate_catalog_counts()
    tool.grants.all().delete()
    tool.delete()
    audit_record(action="catalog.tool.deleted", object_type="catalog.tool", object_id=pk, object_repr=name)


@transaction.atomic
def model_upsert(*, data: Mapping[str, Any], actor: User | None = None) -> tuple[AIModel, bool]:
    """Register or update a model. `actor=None` is the system (imports register models they reference)."""
    if actor is not None and not user_is_platform_admin(actor):
        raise CatalogPermissionError("Only platform admins register or change models.")
    name = str(data.get("name") or "").strip().lower()
    model = AIModel.objects.filter(name=name).first()
    created = model is None
    model = model or AIModel(name=name)
    before = _snapshot(model, MODEL_FIELDS)
    for field in MODEL_FIELDS:
        if field in data:
            setattr(model, field, data[field] or "")
    try:
        model.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise CatalogError(_model_errors(exc)) from exc
    changes = field_changes(before, _snapshot(model, MODEL_FIELDS))
    if created or changes:
        model.save()
        audit_record(
            action="catalog.model.created" if created else "catalog.model.updated", target=model, changes=changes
        )
    return model, created


@transaction.atomic
def grant_request(
    *,
    actor: User | None,
    agent: Agent,
    tool: Tool,
    environment: str = "production",
    capability_names: list[str] | None = None,
    credential_scope: str | None = None,
) -> tuple[ToolGrant, bool]:
    """Ask for an agent to use a tool. Idempotent per agent, tool and environment. Only the agent's owners
    (maintainers) or platform admins ask on its behalf. `capability_names` are what the grant is to cover; none
    means "every capability the tool has when the grant is approved" (approval freezes the list)."""
    if actor is not None and not can_edit(actor, agent):
        raise CatalogPermissionError(
            f"Only maintainers of team {agent.owner.name!r} can request tools for {agent.name}."
        )
    errors: dict[str, list[str]] = {}
    names = sorted(set(capability_names or []))
    known = set(tool.capabilities.values_list("name", flat=True))
    unknown = [name for name in names if name not in known]
    if unknown:
        errors["capability_names"] = [f"{tool.name} has no capability {', '.join(unknown)}."]
    if credential_scope and credential_scope not in Tool.CredentialScope.values:
        errors["credential_scope"] = [f"must be one of {', '.join(Tool.CredentialScope.values)}."]
    grant = ToolGrant(
        agent=agent, tool=tool, environment=environment, capability_names=names, credential_scope=credential_scope
    )
    try:
        grant.full_clean(exclude=["agent", "tool", "risk"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors.update(_model_errors(exc))
    if errors:
        raise CatalogError(errors)
    existing = ToolGrant.objects.select_for_update().filter(agent=agent, tool=tool, environment=environment).first()
    if existing is not None:
        if existing.status in {ToolGrant.Status.REQUESTED, ToolGrant.Status.APPROVED}:
            return existing, False
        before = existing.status
        existing.status = ToolGrant.Status.REQUESTED
        existing.capability_names = names
        existing.credential_scope = credential_scope
        existing.requested_by = actor if actor is not None and actor.is_authenticated else None
        existing.save()
        grant_rescore(existing)
        audit_record(
            action="catalog.grant.requested",
            target=existing,
            changes={"status": {"before": before, "after": "requested"}},
        )
        return existing, True
    grant.requested_by = actor if actor is not None and actor.is_authenticated else None
    grant.save()
    grant_rescore(grant)
    audit_record(
        action="catalog.grant.requested",
        target=grant,
        changes={"agent": agent.name, "tool": tool.name, "environment": environment, "capability_names": names},
    )
    return grant, True


@transaction.atomic(savepoint=False)  # called inside workflows' transactions; no savepoint needed
def grant_set_status(*, grant: ToolGrant, status: str, expires_at: Any = None, reason: str = "") -> ToolGrant:
    """Workflow-driven grant transitions (approved, denied, revoked, expired); re-scores the agent."""
    if status not in ToolGrant.Status.values:
        raise CatalogError({"status": [f"must be one of {', '.join(ToolGrant.Status.values)}."]})
    grant = ToolGrant.objects.select_for_update().select_related("agent", "tool").get(pk=grant.pk)
    before = {"status": grant.status, "expires_at": grant.expires_at, "capability_names": grant.capability_names}
    grant.status = status
    if status == ToolGrant.Status.APPROVED:
        grant.approved_at = timezone.now()
        grant.expires_at = expires_at
        grant.capability_names = facts.grant_covered_on_approval(
            grant.capability_names, facts.tool_capability_names(grant.tool)
        )
    grant.save()
    grant_rescore(grant)
    agent_rescore(grant.agent)
    after = {"status": grant.status, "expires_at": grant.expires_at, "capability_names": grant.capability_names}
    audit_record(
        action=f"catalog.grant.{status}",
        target=grant,
        changes={**field_changes(before, after), "reason": reason},
    )
    return grant
