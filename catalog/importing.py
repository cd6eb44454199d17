"""Import descriptors: parse, validate everything first, then write in one transaction per input.

Idempotent: an entity whose facts already match is "unchanged" and writes nothing; a changed one goes through the
same update services as the UI and API. New entities are written in bulk (rows, relations, search entries and
audit events) because a catalog is usually imported thousands at a time: the new tools and agents together, the
COPYs running in the background (catalog.bulk.BackgroundCopies) while the next rows and the audit chain are built.
If that fails in the database, each kind is tried again on its own, and a kind that still fails falls back to one
savepoint per entity, so a bad document never leaves part of itself behind and never takes the good ones down.

New entities are validated as plain rows (no model instances, no query per entity) when every check is sure to
pass; anything else goes through the services' full validation, whose per-field messages are what gets reported.
Rows go to the database as tuples (catalog.bulk.copy_rows): constructing tens of thousands of instances for the
entities, search rows and audit events cost more than writing them.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from catalog import services
from catalog.bulk import BackgroundCopies, allocate_ids
from catalog.formats import ParsedEntity, ParseResult, parse_document_bytes
from catalog.import_claims import (
    claim_decision,
    describe_current,
    match_existing_servers,
    merge_same_servers,
    owner_change_check,
    rename_derived,
    source_record,
    source_values,
)
from catalog.import_report import ImportReport
from catalog.import_writing import ChunkWriter, link_calls
from catalog.models import Agent, AIModel, EntitySource, Location, Team, TeamMembership, Tool
from catalog.ownership import ImportOrigin, SourceConflict
from catalog.quick_clean import CleanCheck, clean_check
from catalog.search_cache import invalidate_catalog_counts
from catalog.teams import team_create, team_set_member
from portal.audit import audit_record_many
from portal.errors import Conflict
from portal.roles import user_is_platform_admin
from portal.types import User

KIND_ORDER = {"team": 0, "user": 1, "model": 2, "tool": 3, "agent": 4}


class _DryRunRollback(Exception):
    pass


@dataclass
class _Context:
    actor: User | None
    default_owner: Team | None
    location: Location | None
    report: ImportReport
    teams: dict[str, Team] = field(default_factory=dict)
    is_admin: bool = True
    may_create: dict[int, bool] = field(default_factory=dict)  # owner team pk -> the actor may add its entities
    assessments: dict[Any, dict[str, Any]] = field(default_factory=dict)  # risk facts -> assessment payload
    origin: ImportOrigin = field(default_factory=lambda: ImportOrigin(EntitySource.IMPORT))
    adopt: bool = False

    @property
    def owner_judge(self) -> User | None:
        """Whose rights an owner change needs when the services do not check them (a location sync)."""
        if self.actor is None and self.location is not None:
            return self.location.created_by
        return None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Imports allocate hundreds of thousands of small, acyclic objects (parsed data, rows): the cyclic garbage
    collector would walk all of them again and again (a tenth of a 10,000-document import) and free none."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_inputs(inputs: Iterable[tuple[str, bytes]]) -> list[ParseResult]:
    with _gc_paused():
        return [parse_document_bytes(content, source=source) for source, content in inputs]


def import_inputs(
    inputs: Iterable[tuple[str, bytes]],
    *,
    actor: User | None = None,
    default_owner: str | None = None,
    dry_run: bool = False,
    location: Location | None = None,
    source_kind: str | None = None,
    adopt: bool = False,
    refuse_conflicts: bool = False,
) -> ImportReport:
    """Import (source name, bytes) pairs. `actor=None` is the system (location sync).

    The import speaks for one source: `location`, or else `source_kind` (catalog.models.EntitySource: a file on the
    command line, an upload, the scaffolder; an upload by default). An existing entity that another source owns is
    a conflict, reported per document, unless `adopt` (platform admins only); with `refuse_conflicts` a conflict
    writes nothing and raises catalog.ownership.SourceConflict (the API answers 409)."""
    with _gc_paused():
        return import_parsed(
            parse_inputs(inputs),
            actor=actor,
            default_owner=default_owner,
            dry_run=dry_run,
            location=location,
            source_kind=source_kind,
            adopt=adopt,
            refuse_conflicts=refuse_conflicts,
        )


def import_parsed(
    results: Iterable[ParseResult],
    *,
    actor: User | None = None,
    default_owner: str | None = None,
    dry_run: bool = False,
    location: Location | None = None,
    source_kind: str | None = None,
    adopt: bool = False,
    refuse_conflicts: bool = False,
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
        origin=ImportOrigin.for_import(location=location, kind=source_kind),
        adopt=adopt,
    )
    entities = merge_same_servers(_drop_duplicates(entities, report), report)
    entities.sort(key=lambda e: KIND_ORDER[e.kind])
    try:
        with _gc_paused(), transaction.atomic():
            _import_all(entities, context)
            if refuse_conflicts and report.conflicts:
                raise SourceConflict(report.conflicts)
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
    batches = [_import_entities(by_kind["tool"], context, Tool), _import_entities(by_kind["agent"], context, Agent)]
    _create_new(batches, context)


def _one(entity: ParsedEntity, context: _Context, handler: Any) -> None:
    try:
        with transaction.atomic():
            outcome = handler(entity, context)
    except services.CatalogError as exc:
        context.report.fail(entity, entity.source, entity.index, exc.errors)
    except (services.CatalogPermissionError, Conflict) as exc:  # Conflict: e.g. another autonomy level is pending
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

# What services._validate_entity leaves out of full_clean.
_NOT_CLEANED: Final = frozenset({"owner", "risk", "source_location"})
# Columns the quick path sets on every new entity before validating, besides the services' fields from the data.
_SET_BY_IMPORT: Final = ("name", "requested_tools", "secret_names")
_LIST_KEYS: Final = frozenset({"tags", "links", "environments", "skills", "packages", "remotes"})


class _Row:
    """A new entity's columns (attnames) as attributes: the shape that services' helpers read and write.

    Bulk imports build these instead of model instances; constructing thousands of instances cost more than
    writing the rows."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


@dataclass
class _New:
    """A validated new agent or tool, ready to be written."""

    entity: ParsedEntity
    data: dict[str, Any]
    row: Any  # a _Row
    capabilities: list[dict[str, Any]] = field(default_factory=list)
    model_ids: list[int] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    position: int = 0  # among the batch's new entities: the report lists them in document order


@dataclass
class _Lookups:
    """What validating a batch needs from the database, read once for the whole batch."""

    defaults: dict[str, Any]
    defaults_pass: bool  # full_clean accepts every default the quick path keeps
    model_ids: dict[str, int]
    registry_names: set[str]


def _service_data(entity: ParsedEntity, context: _Context) -> dict[str, Any]:
    data = {"name": entity.name, **entity.data}
    if not data.get("owner") and context.default_owner is not None:
        data["owner"] = context.default_owner.name
    return data


def _current_values(current: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in keys:
        if key == "owner":
            values[key] = current["owner__name"]
        elif key in {"models", "calls"}:
            values[key] = sorted(current[key])
        elif key == "tools":
            values[key] = sorted(current["requested_tools"])
        elif key == "secrets":
            values[key] = sorted(current["secret_names"])
        elif key == "capabilities":
            values[key] = current["capabilities_hash"]
        else:
            values[key] = current.get(key)
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
            value = [] if key in _LIST_KEYS else ""
            if key == "annotations":
                value = {}
        elif value == "" and key in services.NULLABLE_FACTS:
            value = None
        values[key] = value
    return values


def _existing_columns(model: type[Agent] | type[Tool]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if f.attname != "risk"]


def _existing(model: type[Agent] | type[Tool], names: list[str]) -> dict[str, dict[str, Any]]:
    """The stored facts of the named entities, as plain values (not instances: most are compared, not changed)."""
    columns = _existing_columns(model)
    existing = {
        values["name"]: values for values in model.objects.filter(name__in=names).values(*columns, "owner__name")
    }
    if model is Agent and existing:
        by_pk = {values["id"]: values for values in existing.values()}
        for values in by_pk.values():
            values["models"], values["calls"] = [], []
        models_used = Agent.models_used.through.objects.filter(agent_id__in=by_pk)
        for agent_id, name in models_used.values_list("agent_id", "aimodel__name"):
            by_pk[agent_id]["models"].append(name)
        calls = Agent.calls.through.objects.filter(from_agent_id__in=by_pk)
        for agent_id, name in calls.values_list("from_agent_id", "to_agent__name"):
            by_pk[agent_id]["calls"].append(name)
    return existing


@dataclass
class _Batch:
    """New entities of one kind. They are validated while the rows before them are written (`_ready_chunks`):
    the quick path needs no query, so it runs while the connection copies; the entities it is unsure of get the
    full checks, which query, once the copies are done."""

    model: type[Agent] | type[Tool]
    report_at: int  # where their outcomes go in the report: after those of the entities read before them
    lookups: _Lookups | None = None
    pending: list[tuple[int, ParsedEntity, dict[str, Any]]] = field(default_factory=list)  # (position, ...)
    unsure: list[tuple[int, ParsedEntity, dict[str, Any]]] = field(default_factory=list)
    prepared: list[_New] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # report outcomes of entities the checks refused

    @property
    def empty(self) -> bool:
        return not (self.pending or self.unsure or self.prepared)

    def most_rows(self) -> int:
        return len(self.pending) + len(self.unsure) + len(self.prepared)


def _import_entities(entities: list[ParsedEntity], context: _Context, model: type[Agent] | type[Tool]) -> _Batch:
    """Report unchanged entities and update changed ones; the new ones are validated and written later, with
    those of the other kind, by _create_new. Everything validating them needs from the database is read here."""
    if not entities:
        return _Batch(model, len(context.report.outcomes))
    existing = _existing(model, [entity.name.lower() for entity in entities])
    renames = match_existing_servers(entities, existing, _existing_columns(model)) if model is Tool else {}
    new_entities: list[tuple[int, ParsedEntity, dict[str, Any]]] = []
    if model is Agent:
        _register_missing_models(entities, context)
    for entity in entities:
        data = _service_data(entity, context)
        current = existing.get(entity.name.lower())
        if current is None:
            new_entities.append((len(new_entities), entity, data))
            continue
        claim = claim_decision(
            entity,
            current,
            origin=context.origin,
            adopt=context.adopt,
            is_admin=context.is_admin,
            report=context.report,
        )
        if claim is None:
            continue
        keys = [key for key in data if key != "name"]
        if (
            _current_values(current, keys) == _desired_values(data, keys)
            and claim == "same"
            and not current["orphaned"]
            and entity.name.lower() not in renames
        ):
            context.report.add_outcome(entity, "unchanged")
            continue
        _one(
            entity,
            context,
            lambda e, c, cur=current, d=data, how=claim: _update_existing(model, e, cur, d, c, claim=how),
        )
    batch = _Batch(model, len(context.report.outcomes), pending=new_entities)
    if new_entities:
        batch.lookups = _lookups([data for _, _, data in new_entities], model)
        for _, _, data in new_entities:  # the actor's rights per owner, read now: the quick path may not query
            owner = _owner_of(data, context)
            if owner is not None:
                _may_create(context, owner)
    return batch


def _update_existing(
    model: type[Agent] | type[Tool],
    entity: ParsedEntity,
    current: Mapping[str, Any],
    data: dict[str, Any],
    context: _Context,
    *,
    claim: str,
) -> str:
    """Change an existing entity through the same update services as the UI and API (risk, signals, audit), after
    the import's source has been checked (`claim`); a rename from a derived name and an owner change come first."""
    instance = model.objects.select_related("owner").get(pk=current["id"])
    if isinstance(instance, Tool) and instance.name != entity.name.lower():
        instance = rename_derived(tool=instance, name=entity.name.lower())
    owner_name = _desired_values(data, ["owner"])["owner"] if data.get("owner") else instance.owner.name
    if owner_name != instance.owner.name:
        owner_change_check(judge=context.owner_judge, instance=instance, owner_name=owner_name, entity=entity)
    previous_owner = instance.owner.name
    updated: Agent | Tool
    if isinstance(instance, Agent):
        updated = services.agent_update(
            actor=context.actor,
            agent=instance,
            data=data,
            check_permission=context.actor is not None,
            strict_calls=False,
        )
    else:
        updated = services.tool_update(
            actor=context.actor, tool=instance, data=data, check_permission=context.actor is not None
        )
    if isinstance(updated, Agent) and updated.held_changes:
        context.report.hold(entity, updated.held_changes)
    if updated.owner.name != previous_owner:
        context.report.owner_changes.append(
            {"kind": entity.kind, "name": updated.name, "from": previous_owner, "to": updated.owner.name}
        )
    source_record(
        model,
        updated,
        entity,
        origin=context.origin,
        claim=claim,
        previous=describe_current(current),
        report=context.report,
    )
    return "updated"


def _create_new(batches: list[_Batch], context: _Context) -> None:
    """Validate and write the batches in bulk; on a database error, each batch again on its own, and a batch that
    fails on its own one savepoint per entity."""
    batches = [batch for batch in batches if not batch.empty]
    if not batches:
        return
    try:
        with transaction.atomic():
            _bulk_write(batches, context)
    except DatabaseError:
        for batch in batches:  # what the failed attempt had not validated yet
            _prepare_rest(batch, context)
        if len(batches) == 1:
            _report_failures(batches[0], context)
            _create_one_by_one(batches[0], context)
            return
        for batch in reversed(batches):
            _report_failures(batch, context)
        for batch in batches:
            try:
                with transaction.atomic():
                    _bulk_write([batch], context)
            except DatabaseError:
                _create_one_by_one(batch, context)
            else:
                context.report.created += len(batch.prepared)
                context.report.outcomes.extend(_created(batch))
        return
    for batch in reversed(batches):  # later batches first: inserting them leaves earlier positions as they were
        _report_failures(batch, context)
        context.report.created += len(batch.prepared)
        context.report.outcomes[batch.report_at + len(batch.failures) : batch.report_at + len(batch.failures)] = (
            _created(batch)
        )


def _report_failures(batch: _Batch, context: _Context) -> None:
    """The refused new entities' outcomes, where the report lists that kind (their errors are already counted)."""
    context.report.outcomes[batch.report_at : batch.report_at] = batch.failures


def _created(batch: _Batch) -> list[dict[str, Any]]:
    report = ImportReport()
    for new in batch.prepared:
        report.add_outcome(new.entity, "created")
    return report.outcomes


def _create_one_by_one(batch: _Batch, context: _Context) -> None:
    create = services.agent_create if batch.model is Agent else services.tool_create
    for new in batch.prepared:
        _one(new.entity, context, lambda e, c, d=new.data: _create_one(batch.model, create, e, d, c))


def _create_one(
    model: type[Agent] | type[Tool], create: Any, entity: ParsedEntity, data: Any, context: _Context
) -> str:
    instance = create(actor=context.actor, data=data, check_permission=context.actor is not None)
    model.objects.filter(pk=instance.pk).update(**source_values(entity, context.origin))
    return "created"


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


def _names(data: Mapping[str, Any], key: str) -> list[str]:
    return services._clean_list_of_strings(data.get(key), key, {})


def _lookups(datas: list[dict[str, Any]], model: type[Agent] | type[Tool]) -> _Lookups:
    defaults = {f.attname: f.get_default() for f in model._meta.concrete_fields}
    assigned = {*_fields_of(model), *_SET_BY_IMPORT}
    lookups = _Lookups(
        defaults=defaults,
        defaults_pass=_clean_check(model).passes(_Row(defaults), [name for name in defaults if name not in assigned]),
        model_ids={},
        registry_names=set(),
    )
    if model is Agent:
        models = {name.lower() for data in datas for name in _names(data, "models")}
        if models:
            lookups.model_ids = dict(AIModel.objects.filter(name__in=models).values_list("name", "pk"))
    else:
        wanted = {data["registry_name"] for data in datas if isinstance(data.get("registry_name"), str)}
        if wanted - {""}:
            taken = Tool.objects.filter(registry_name__in=wanted - {""}).values_list("registry_name", flat=True)
            lookups.registry_names = set(taken)  # type: ignore[arg-type]
    return lookups


def _fields_of(model: type[Agent] | type[Tool]) -> tuple[str, ...]:
    return services.AGENT_FIELDS if model is Agent else services.TOOL_FIELDS


def _clean_check(model: type[Agent] | type[Tool]) -> CleanCheck:
    return clean_check(model, _NOT_CLEANED)


def _may_create(context: _Context, owner: Team) -> bool:
    if context.actor is None:
        return True
    if owner.pk not in context.may_create:
        context.may_create[owner.pk] = services.can_create_for(context.actor, owner)
    return context.may_create[owner.pk]


# New entities are validated and written this many at a time, so the server starts on the first rows while the
# rest are validated (a tenth of a 10,000-document import).
CHUNK_ROWS: Final = 1_000


def _owner_of(data: Mapping[str, Any], context: _Context) -> Team | None:
    return context.teams.get(str(data.get("owner") or "").removeprefix("group:").lower())


def _ready_chunks(batch: _Batch, context: _Context) -> Iterator[list[_New]]:
    """The batch's valid new entities, a chunk at a time: first those an earlier attempt validated, then those the
    quick path vouches for as it goes. No query: the caller's connection is busy copying the previous chunks."""
    earlier = list(batch.prepared)
    for start in range(0, len(earlier), CHUNK_ROWS):
        yield earlier[start : start + CHUNK_ROWS]
    pending, batch.pending = batch.pending, []
    lookups = batch.lookups
    for start in range(0, len(pending), CHUNK_ROWS):
        if lookups is None:
            raise RuntimeError("new entities without their lookups: _import_entities reads them")
        chunk = []
        for position, entity, data in pending[start : start + CHUNK_ROWS]:
            owner = _owner_of(data, context)
            new = None
            if owner is not None and _may_create(context, owner):  # read for every owner beforehand
                new = _prepare_valid(entity, data, context, batch.model, owner, lookups)
            if new is None:
                batch.unsure.append((position, entity, data))
            else:
                new.position = position
                chunk.append(new)
        batch.prepared.extend(chunk)
        yield chunk


def _check_unsure(batch: _Batch, context: _Context) -> list[_New]:
    """Every check, with its messages, for the entities the quick path was unsure of; the valid ones are returned
    (and kept in the batch, in document order)."""
    unsure, batch.unsure = batch.unsure, []
    if not unsure:
        return []
    report = context.report
    reported = len(report.outcomes)
    checked = []
    for position, entity, data in unsure:
        new = _prepare_checked(entity, data, context, batch.model)
        if new is not None:
            new.position = position
            checked.append(new)
    batch.failures.extend(report.outcomes[reported:])
    del report.outcomes[reported:]
    batch.prepared = sorted([*batch.prepared, *checked], key=attrgetter("position"))
    return checked


def _prepare_rest(batch: _Batch, context: _Context) -> None:
    for _ in _ready_chunks(batch, context):
        pass
    _check_unsure(batch, context)


def _prepare_valid(
    entity: ParsedEntity,
    data: dict[str, Any],
    context: _Context,
    model: type[Agent] | type[Tool],
    owner: Team,
    lookups: _Lookups,
) -> _New | None:
    """The same row _prepare_checked builds, without model instances or per-entity queries; None when any check
    would fail (or it cannot tell)."""
    if (
        not lookups.defaults_pass
        or entity.name.lower() in services.RESERVED_NAMES
        or (not entity.nul_free and services._has_nul(data))  # data adds only the owner's name: no NUL in it
    ):
        return None  # the full checks report these by field
    row: Any = _Row(lookups.defaults)
    row.name = entity.name.lower()
    row.owner_id = owner.pk
    fields = _fields_of(model)
    services._assign(row, fields, data)
    new = _New(entity, data, row)
    errors: dict[str, list[str]] = {}
    if model is Agent:
        if "models" in data:
            used = services._clean_list_of_strings(data["models"], "models", errors)
            model_ids = [lookups.model_ids.get(name.lower()) for name in used]
            if None in model_ids:
                return None
            new.model_ids = list(dict.fromkeys(model_ids))  # type: ignore[arg-type]
        if "calls" in data:
            services._clean_list_of_strings(data["calls"], "calls", errors)
        tools = services._clean_list_of_strings(data["tools"], "tools", errors) if "tools" in data else []
        row.requested_tools = sorted(set(tools))
        new.calls = [name.lower() for name in data.get("calls") or []]
    else:
        new.capabilities = services._clean_capabilities(data.get("capabilities", []), errors) or []
        row.secret_names = services._clean_secrets(data, errors) or []
        if row.registry_name and row.registry_name in lookups.registry_names:
            return None
    if "links" in data and data["links"] is not None:
        services._validate_links(data["links"], errors)
    if errors or ("description" in data and services._validate_description(str(data["description"]))):
        return None
    # The defaults were checked once for the batch: only what this entity set needs checking.
    if not _clean_check(model).passes(row, [*_SET_BY_IMPORT, *(name for name in fields if name in data)]):
        return None
    _set_source(row, entity, context)
    return new


def _prepare_checked(
    entity: ParsedEntity, data: dict[str, Any], context: _Context, model: type[Agent] | type[Tool]
) -> _New | None:
    """Every check, with a model instance and the services' validation: reports each problem by field."""
    errors: dict[str, list[str]] = {}
    owner_name = str(data.get("owner") or "").removeprefix("group:").lower()
    owner = context.teams.get(owner_name)
    if not owner_name:
        errors["spec.owner"] = ["is required: the team that owns it (or pass --owner for formats without one)."]
    elif owner is None:
        errors["spec.owner"] = [f"team {owner_name!r} does not exist; import or create it first."]
    elif not _may_create(context, owner):
        errors["spec.owner"] = [f"you are not a maintainer of team {owner_name!r} (or a platform admin)."]
    instance = model(name=entity.name.lower())
    if owner is not None:
        instance.owner = owner
    services._assign(instance, _fields_of(model), data)
    capabilities: list[dict[str, Any]] = []
    models: list[AIModel] = []
    if isinstance(instance, Agent):
        relations = services._agent_relations(data, errors, strict_calls=False)  # link_calls warns of unknown
        models = relations.get("models", [])
        instance.requested_tools = relations.get("tools", [])
    else:
        capabilities = services._clean_capabilities(data.get("capabilities", []), errors) or []
        instance.secret_names = services._clean_secrets(data, errors) or []
        if instance.registry_name and Tool.objects.filter(registry_name=instance.registry_name).exists():
            errors["registry_name"] = [f"a tool with registry name {instance.registry_name!r} already exists."]
    if instance.name in services.RESERVED_NAMES:
        errors["metadata.name"] = [f"{instance.name!r} is reserved by the portal's URLs; choose another name."]
    services._validate_entity(instance, errors, data)
    if errors:
        context.report.fail(entity, entity.source, entity.index, errors)
        return None
    row = _Row({f.attname: getattr(instance, f.attname) for f in model._meta.concrete_fields})
    _set_source(row, entity, context)
    return _New(
        entity,
        data,
        row,
        capabilities=capabilities,
        model_ids=[m.pk for m in models],
        calls=[name.lower() for name in data.get("calls") or []] if model is Agent else [],
    )


def _set_source(row: Any, entity: ParsedEntity, context: _Context) -> None:
    row.__dict__.update(source_values(entity, context.origin))


def _bulk_write(batches: list[_Batch], context: _Context) -> None:
    """Validate and write new entities' rows for every table an entity writes to, and their audit events, with no
    per-entity queries. No permission rows: the owning team's maintainers may edit because they maintain the owner
    (services.can_edit).

    The COPYs run in the background while this thread validates and builds the next chunk's rows and audit
    events (which the audit sealer chains after the commit, as everyone's). Ids are taken first, because the
    connection is busy after; they are taken for every new entity: a refused one leaves a gap."""
    ids = {batch.model: iter(allocate_ids(batch.model, batch.most_rows())) for batch in batches}
    writer = ChunkWriter(context)
    with BackgroundCopies() as copies:
        for batch in batches:
            for chunk in _ready_chunks(batch, context):
                writer.write(copies, batch.model, chunk, ids[batch.model])
    checked = [(batch, _check_unsure(batch, context)) for batch in batches]  # these query: after the copies
    with BackgroundCopies() as copies:
        for batch, prepared in checked:
            writer.write(copies, batch.model, prepared, ids[batch.model])
    for batch in batches:
        if batch.model is Agent:
            link_calls(batch.prepared, context)
    invalidate_catalog_counts()
