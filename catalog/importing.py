"""Import descriptors: parse, validate everything first, then write in one transaction per input.

Idempotent: an entity whose facts already match is "unchanged" and writes nothing; a changed one goes through the
same update services as the UI and API. New entities are written in bulk (rows, relations, permissions, search
entries and audit events) because a catalog is usually imported thousands at a time; a batch that still fails
in the database falls back to one savepoint per entity, so a bad document never leaves part of itself behind
and never takes the good ones down with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone
from guardian.models import GroupObjectPermission

from catalog import risk, services
from catalog.bulk import insert_instances
from catalog.formats import ParsedEntity, ParseResult, parse_document_bytes
from catalog.models import Agent, AIModel, Capability, CatalogEntry, Location, Team, TeamMembership, Tool
from catalog.search_cache import invalidate_catalog_counts
from catalog.teams import team_create, team_set_member
from portal.audit import audit_record_many
from portal.roles import user_is_platform_admin

KIND_ORDER = {"team": 0, "user": 1, "model": 2, "tool": 3, "agent": 4}


@dataclass
class ImportIssue:
    source: str
    index: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.index is None else f"{self.source} document {self.index}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "index": self.index, "field": self.field, "message": self.message}


@dataclass
class ImportReport:
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[ImportIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped_items: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def add_outcome(self, entity: ParsedEntity, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.outcomes.append(
            {
                "kind": entity.kind,
                "name": entity.name,
                "source": entity.source,
                "index": entity.index,
                "outcome": outcome,
            }
        )

    def fail(
        self, entity: ParsedEntity | None, source: str, index: int | None, errors: Mapping[str, list[str]]
    ) -> None:
        self.failed += 1
        for field_name, messages in errors.items():
            for message in messages:
                self.errors.append(ImportIssue(source, index, field_name, message))
        if entity is not None:
            self.outcomes.append(
                {"kind": entity.kind, "name": entity.name, "source": source, "index": index, "outcome": "failed"}
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": [issue.as_dict() for issue in self.errors],
            "warnings": self.warnings,
            "skipped_items": self.skipped_items,
            "entities": self.outcomes,
        }

    @property
    def ok(self) -> bool:
        return self.failed == 0


class _DryRunRollback(Exception):
    pass


@dataclass
class _Context:
    actor: AbstractBaseUser | None
    default_owner: Team | None
    location: Location | None
    report: ImportReport
    teams: dict[str, Team] = field(default_factory=dict)
    is_admin: bool = True


def parse_inputs(inputs: Iterable[tuple[str, bytes]]) -> list[ParseResult]:
    return [parse_document_bytes(content, source=source) for source, content in inputs]


def import_inputs(
    inputs: Iterable[tuple[str, bytes]],
    *,
    actor: AbstractBaseUser | None = None,
    default_owner: str | None = None,
    dry_run: bool = False,
    location: Location | None = None,
) -> ImportReport:
    """Import (source name, bytes) pairs. `actor=None` is the system (command line, location sync)."""
    return import_parsed(
        parse_inputs(inputs), actor=actor, default_owner=default_owner, dry_run=dry_run, location=location
    )


def import_parsed(
    results: Iterable[ParseResult],
    *,
    actor: AbstractBaseUser | None = None,
    default_owner: str | None = None,
    dry_run: bool = False,
    location: Location | None = None,
) -> ImportReport:
    report = ImportReport(dry_run=dry_run)
    entities: list[ParsedEntity] = []
    for result in results:
        for error in result.errors:
            report.fail(None, error.source, error.index, {error.field: [error.message]})
        for skipped in result.skipped:
            report.skipped += 1
            report.skipped_items.append(
                {"source": skipped.source, "index": skipped.index, "kind": skipped.kind, "reason": skipped.reason}
            )
        for entity in result.entities:
            report.warnings.extend(f"{entity.source} document {entity.index}: {w}" for w in entity.warnings)
            entities.append(entity)
    owner = None
    if default_owner:
        owner = Team.objects.filter(name__iexact=default_owner).first()
        if owner is None:
            report.fail(None, "--owner", None, {"owner": [f"team {default_owner!r} does not exist."]})
            return report
    context = _Context(
        actor=actor,
        default_owner=owner,
        location=location,
        report=report,
        is_admin=actor is None or user_is_platform_admin(actor),
    )
    entities = _drop_duplicates(entities, report)
    entities.sort(key=lambda e: KIND_ORDER[e.kind])
    try:
        with transaction.atomic():
            _import_all(entities, context)
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    return report


def _drop_duplicates(entities: list[ParsedEntity], report: ImportReport) -> list[ParsedEntity]:
    """The same kind and name twice across the inputs: keep the first, fail the others, naming both places."""
    first_seen: dict[tuple[str, str], ParsedEntity] = {}
    kept = []
    for entity in entities:
        key = (entity.kind, entity.name.lower())
        if key in first_seen:
            first = first_seen[key]
            report.fail(
                entity,
                entity.source,
                entity.index,
                {
                    "metadata.name": [
                        f"{entity.kind} {entity.name!r} is already defined in {first.source} document {first.index}."
                    ]
                },
            )
            continue
        first_seen[key] = entity
        kept.append(entity)
    return kept


def _import_all(entities: list[ParsedEntity], context: _Context) -> None:
    by_kind: dict[str, list[ParsedEntity]] = defaultdict(list)
    for entity in entities:
        by_kind[entity.kind].append(entity)
    for entity in by_kind["team"]:
        _one(entity, context, _import_team)
    for entity in by_kind["user"]:
        _one(entity, context, _import_user)
    for entity in by_kind["model"]:
        _one(entity, context, _import_model)
    context.teams = {team.name: team for team in Team.objects.all()}
    _import_entities(by_kind["tool"], context, Tool)
    _import_entities(by_kind["agent"], context, Agent)


def _one(entity: ParsedEntity, context: _Context, handler: Any) -> None:
    try:
        with transaction.atomic():
            outcome = handler(entity, context)
    except services.CatalogError as exc:
        context.report.fail(entity, entity.source, entity.index, exc.errors)
    except services.CatalogPermissionError as exc:
        context.report.fail(entity, entity.source, entity.index, {"": [str(exc)]})
    except ValidationError as exc:
        context.report.fail(
            entity, entity.source, entity.index, exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        )
    else:
        context.report.add_outcome(entity, outcome)


# --- teams, users, models ------------------------------------------------------------------------------------


def _require_admin(context: _Context, what: str) -> None:
    if not context.is_admin:
        raise services.CatalogPermissionError(f"Only platform admins can import {what}.")


def _import_team(entity: ParsedEntity, context: _Context) -> str:
    data = entity.data
    team = Team.objects.filter(name__iexact=entity.name).first()
    if team is None:
        _require_admin(context, "teams")
        try:
            team = team_create(
                name=entity.name,
                title=data.get("title") or "",
                description=data.get("description") or "",
                email=data.get("email") or "",
            )
        except ValidationError as exc:
            raise services.CatalogError(services._model_errors(exc)) from exc
        outcome = "created"
    else:
        desired = {key: data[key] or "" for key in ("title", "description", "email") if key in data}
        changes = {key: value for key, value in desired.items() if getattr(team, key) != value}
        if changes:
            _require_admin(context, "teams")
            for key, value in changes.items():
                setattr(team, key, value)
            team.save()
            audit_record_many([{"action": "catalog.team.updated", "target": team, "changes": changes}])
        outcome = "updated" if changes else "unchanged"
    if data.get("parent"):
        parent = Team.objects.filter(name__iexact=data["parent"]).first()
        if parent is not None and team.parent_id != parent.pk:
            team.parent = parent
            team.save(update_fields=["parent"])
            outcome = "updated" if outcome == "unchanged" else outcome
    user_model = get_user_model()
    for username in data.get("members") or []:
        user = user_model.objects.filter(username=username).first()
        if user is not None and not TeamMembership.objects.filter(team=team, user=user).exists():
            team_set_member(team=team, user=user)
            outcome = "updated" if outcome == "unchanged" else outcome
    return outcome


def _import_user(entity: ParsedEntity, context: _Context) -> str:
    data = entity.data
    user_model = get_user_model()
    user = user_model.objects.filter(username=entity.name).first()
    outcome = "unchanged"
    first, _, last = (data.get("display_name") or "").partition(" ")
    if user is None:
        _require_admin(context, "users")
        user = user_model(
            username=entity.name, email=data.get("email") or "", first_name=first[:150], last_name=last[:150]
        )
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        from portal.roles import ENGINEER, role_group

        user.groups.add(role_group(ENGINEER))
        audit_record_many([{"action": "portal.user.created", "target": user, "changes": {"username": user.username}}])
        outcome = "created"
    elif data.get("email") and user.email != data["email"]:
        _require_admin(context, "users")
        user.email = data["email"]
        user.save(update_fields=["email"])
        outcome = "updated"
    for team_name in data.get("teams") or []:
        team = Team.objects.filter(name__iexact=team_name).first()
        if team is not None and not TeamMembership.objects.filter(team=team, user=user).exists():
            team_set_member(team=team, user=user)
            outcome = "updated" if outcome == "unchanged" else outcome
    return outcome


def _import_model(entity: ParsedEntity, context: _Context) -> str:
    existing = AIModel.objects.filter(name__iexact=entity.name).first()
    if existing is not None and all(
        (getattr(existing, key) or "") == (entity.data.get(key) or "")
        for key in services.MODEL_FIELDS
        if key in entity.data
    ):
        return "unchanged"
    if existing is None:
        _require_admin(context, "models")
    _, created = services.model_upsert(data={"name": entity.name, **entity.data})
    return "created" if created else "updated"


# --- agents and tools ----------------------------------------------------------------------------------------


def _service_data(entity: ParsedEntity, context: _Context) -> dict[str, Any]:
    data = {"name": entity.name, **entity.data}
    if not data.get("owner") and context.default_owner is not None:
        data["owner"] = context.default_owner.name
    return data


def _current_values(instance: Agent | Tool, keys: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in keys:
        if key == "owner":
            values[key] = instance.owner.name
        elif key == "models":
            values[key] = sorted(m.name for m in instance.models_used.all())  # type: ignore[union-attr]
        elif key == "calls":
            values[key] = sorted(a.name for a in instance.calls.all())  # type: ignore[union-attr]
        elif key == "tools":
            values[key] = sorted(instance.requested_tools)  # type: ignore[union-attr]
        elif key == "secrets":
            values[key] = sorted(instance.secret_names)  # type: ignore[union-attr]
        elif key == "capabilities":
            values[key] = instance.capabilities_hash  # type: ignore[union-attr]
        else:
            values[key] = getattr(instance, key, None)
    return values


def _desired_values(data: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in keys:
        value = data[key]
        if key in {"models", "calls", "tools", "secrets"}:
            value = sorted(str(v).lower() if key != "secrets" else str(v) for v in (value or []))
        elif key == "capabilities":
            value = services.capabilities_hash(value or [])
        elif key == "owner":
            value = str(value).removeprefix("group:").lower()
        elif value is None and key not in services.NULLABLE_FACTS:
            value = [] if key in {"tags", "links", "environments", "skills", "packages", "remotes"} else ""
            if key == "annotations":
                value = {}
        elif value == "" and key in services.NULLABLE_FACTS:
            value = None
        values[key] = value
    return values


def _import_entities(entities: list[ParsedEntity], context: _Context, model: type[Agent] | type[Tool]) -> None:
    if not entities:
        return
    names = [entity.name.lower() for entity in entities]
    existing: dict[str, Any] = {}
    queryset = model.objects.select_related("owner").filter(name__in=names)
    queryset = queryset.prefetch_related("models_used", "calls") if model is Agent else queryset
    for instance in queryset:
        existing[instance.name] = instance
    new_entities = []
    if model is Agent:
        _register_missing_models(entities, context)
    for entity in entities:
        data = _service_data(entity, context)
        instance = existing.get(entity.name.lower())
        if instance is None:
            new_entities.append((entity, data))
            continue
        keys = [key for key in data if key != "name"]
        if _current_values(instance, keys) == _desired_values(data, keys) and not _location_changed(instance, context):
            context.report.add_outcome(entity, "unchanged")
            continue
        _one(entity, context, lambda e, c, inst=instance, d=data: _update_existing(model, inst, d, c))
    if new_entities:
        _create_new(new_entities, context, model)


def _location_changed(instance: Agent | Tool, context: _Context) -> bool:
    if context.location is None:
        return instance.orphaned
    return instance.source_location_id != context.location.pk or instance.orphaned


def _update_existing(
    model: type[Agent] | type[Tool], instance: Agent | Tool, data: dict[str, Any], context: _Context
) -> str:
    update = services.agent_update if model is Agent else services.tool_update
    extra = {"strict_calls": False} if model is Agent else {}
    update(
        actor=context.actor,
        data=data,
        check_permission=context.actor is not None,
        **extra,
        **{model._meta.model_name: instance},
    )  # type: ignore[operator]
    _mark_source(model, [instance.pk], context)
    return "updated"


def _mark_source(model: type[Agent] | type[Tool], pks: list[int], context: _Context) -> None:
    values: dict[str, Any] = {"orphaned": False}
    if context.location is not None:
        values["source_location"] = context.location
    model.objects.filter(pk__in=pks).update(**values)


def _create_new(
    items: list[tuple[ParsedEntity, dict[str, Any]]], context: _Context, model: type[Agent] | type[Tool]
) -> None:
    """Validate all, then write the valid ones in bulk; on a database error, retry one savepoint per entity."""
    prepared = []
    for entity, data in items:
        result = _prepare_new(entity, data, context, model)
        if result is not None:
            prepared.append(result)
    if not prepared:
        return
    try:
        with transaction.atomic():
            _bulk_write(prepared, context, model)
    except DatabaseError:
        create = services.agent_create if model is Agent else services.tool_create
        for item in prepared:
            entity, data = item[0], item[1]
            _one(
                entity,
                context,
                lambda e, c, d=data: (create(actor=c.actor, data=d, check_permission=c.actor is not None), "created")[
                    1
                ],
            )
        return
    for item in prepared:
        context.report.add_outcome(item[0], "created")


def _register_missing_models(entities: list[ParsedEntity], context: _Context) -> None:
    """Descriptors name the models they use; an unknown one is registered by name rather than failing the agent."""
    wanted: dict[str, ParsedEntity] = {}
    for entity in entities:
        for name in entity.data.get("models") or []:
            if str(name).strip():
                wanted.setdefault(str(name).lower(), entity)
    known = set(AIModel.objects.filter(name__in=list(wanted)).values_list("name", flat=True))
    for name, entity in sorted(wanted.items()):
        if name in known:
            continue
        try:
            services.model_upsert(data={"name": name})
        except services.CatalogError:
            continue  # not a DNS label: _agent_relations reports it against the agent
        context.report.warnings.append(f"{entity.source} document {entity.index}: registered unknown model {name!r}")


def _prepare_new(
    entity: ParsedEntity, data: dict[str, Any], context: _Context, model: type[Agent] | type[Tool]
) -> tuple[ParsedEntity, dict[str, Any], Any, dict[str, Any]] | None:
    errors: dict[str, list[str]] = {}
    owner_name = str(data.get("owner") or "").removeprefix("group:").lower()
    owner = context.teams.get(owner_name)
    if not owner_name:
        errors["spec.owner"] = ["is required: the team that owns it (or pass --owner for formats without one)."]
    elif owner is None:
        errors["spec.owner"] = [f"team {owner_name!r} does not exist; import or create it first."]
    elif context.actor is not None and not services.can_create_for(context.actor, owner):
        errors["spec.owner"] = [f"you are not a maintainer of team {owner_name!r} (or a platform admin)."]
    instance = model(name=entity.name.lower())
    if owner is not None:
        instance.owner = owner
    fields = services.AGENT_FIELDS if model is Agent else services.TOOL_FIELDS
    services._assign(instance, fields, data)
    extras: dict[str, Any] = {}
    if model is Agent:
        relations = services._agent_relations(data, errors, strict_calls=False)
        if relations.get("calls_missing"):
            context.report.warnings.append(
                f"{entity.source} document {entity.index}: calls unknown agent(s) {', '.join(relations['calls_missing'])}"
            )
        extras["models"] = relations.get("models", [])
        extras["calls"] = [name.lower() for name in data.get("calls") or []]
        instance.requested_tools = relations.get("tools", [])
    else:
        extras["capabilities"] = services._clean_capabilities(data.get("capabilities", []), errors) or []
        instance.secret_names = services._clean_secrets(data, errors) or []
        if instance.registry_name and Tool.objects.filter(registry_name=instance.registry_name).exists():
            errors["registry_name"] = [f"a tool with registry name {instance.registry_name!r} already exists."]
    services._validate_entity(instance, errors, data)
    if errors:
        context.report.fail(entity, entity.source, entity.index, errors)
        return None
    if context.location is not None:
        instance.source_location = context.location
    instance.source_key = f"{entity.source}#{entity.index}"[:300]
    return entity, data, instance, extras


def _bulk_write(
    prepared: list[tuple[ParsedEntity, dict[str, Any], Any, dict[str, Any]]],
    context: _Context,
    model: type[Agent] | type[Tool],
) -> None:
    now = timezone.now()
    instances = [item[2] for item in prepared]
    if model is Tool:
        for _, _, tool, extras in prepared:
            tool.capabilities_hash = services.capabilities_hash(extras["capabilities"])
            facts = risk.ToolFacts(
                data_class=tool.data_class,
                reach=tool.reach,
                credential_scope=tool.credential_scope,
                annotations_trusted=False,
                capabilities=tuple(
                    risk.CapabilityFacts(**{k: cap.get(k) for k in ("name", *services.CAPABILITY_HINTS)})
                    for cap in extras["capabilities"]
                ),
            )
            services._store_assessment(tool, risk.assess_tool(facts))
    else:
        for agent in instances:
            services._store_assessment(agent, risk.assess_agent(services.agent_facts(agent)))
    for instance in instances:
        instance.created_at = now
        instance.updated_at = now
    insert_instances(model, instances)
    if model is Tool:
        insert_instances(
            Capability,
            [Capability(tool=tool, **cap) for (_, _, tool, extras) in prepared for cap in extras["capabilities"]],
        )
        capability_names = {
            tool.pk: [cap["name"] for cap in extras["capabilities"]] for (_, _, tool, extras) in prepared
        }
        entries = [
            CatalogEntry(kind="tool", entity_id=t.pk, **services.tool_entry_values(t, capability_names[t.pk]))
            for t in instances
        ]
    else:
        through_models = Agent.models_used.through
        through_models.objects.bulk_create(
            [
                through_models(agent_id=agent.pk, aimodel_id=m.pk)
                for (_, _, agent, extras) in prepared
                for m in extras["models"]
            ],
            batch_size=2000,
        )
        entries = [CatalogEntry(kind="agent", entity_id=a.pk, **services.agent_entry_values(a)) for a in instances]
        _link_calls(prepared)
    insert_instances(CatalogEntry, entries)
    invalidate_catalog_counts()
    _bulk_owner_permissions(instances, model)
    audit_record_many(
        [
            {
                "action": f"catalog.{model._meta.model_name}.created",
                "target": instance,
                "changes": {
                    "name": instance.name,
                    "owner": instance.owner.name,
                    "source": item[0].source,
                    "index": item[0].index,
                    "imported": True,
                },
            }
            for item, instance in zip(prepared, instances, strict=True)
        ]
    )


def _link_calls(prepared: list[tuple[ParsedEntity, dict[str, Any], Any, dict[str, Any]]]) -> None:
    wanted = {name for (_, _, _, extras) in prepared for name in extras["calls"]}
    if not wanted:
        return
    by_name = dict(Agent.objects.filter(name__in=wanted).values_list("name", "pk"))
    through = Agent.calls.through
    through.objects.bulk_create(
        [
            through(from_agent_id=agent.pk, to_agent_id=by_name[name])
            for (_, _, agent, extras) in prepared
            for name in extras["calls"]
            if name in by_name
        ],
        ignore_conflicts=True,
    )


def _bulk_owner_permissions(instances: list[Any], model: type[Agent] | type[Tool]) -> None:
    content_type = ContentType.objects.get_for_model(model)
    permissions = list(
        Permission.objects.filter(
            content_type=content_type,
            codename__in=[f"change_{model._meta.model_name}", f"delete_{model._meta.model_name}"],
        )
    )
    group_ids = {
        team.pk: team.maintainers_group_id for team in Team.objects.filter(pk__in={i.owner_id for i in instances})
    }
    # New objects: no permission rows exist for them yet, so plain inserts cannot conflict.
    insert_instances(
        GroupObjectPermission,
        [
            GroupObjectPermission(
                content_type=content_type,
                object_pk=str(instance.pk),
                group_id=group_ids[instance.owner_id],
                permission=permission,
            )
            for instance in instances
            for permission in permissions
        ],
    )


def mark_orphans(*, location: Location, seen: Mapping[str, set[str]]) -> int:
    """Entities from this location that it no longer describes are marked orphaned, never deleted."""
    marked = 0
    for kind, model in (("agent", Agent), ("tool", Tool)):
        vanished = model.objects.filter(source_location=location, orphaned=False).exclude(
            name__in=seen.get(kind, set())
        )
        for instance in vanished:
            model.objects.filter(pk=instance.pk).update(orphaned=True)
            audit_record_many(
                [{"action": f"catalog.{kind}.orphaned", "target": instance, "changes": {"location": str(location)}}]
            )
            marked += 1
    return marked
