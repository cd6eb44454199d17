"""Writing an import's new agents and tools in bulk: their rows, capabilities, models, search entries and audit
events, a chunk at a time, as COPYs that run in the background while the next chunk is built (catalog.importing
validates them and decides what is new)."""

from __future__ import annotations

from collections.abc import Iterator
from operator import attrgetter, itemgetter
from typing import Any, Final

from django.utils import timezone

from catalog import risk, scoring, search_index, services
from catalog.bulk import BackgroundCopies
from catalog.models import Agent, Capability, CatalogEntry, Tool
from portal.audit import AUDIT_EVENT_COLUMNS, audit_event_rows, audit_event_tuples
from portal.models import AuditEvent


def _assess(row: Any, facts: risk.AgentFacts | risk.ToolFacts, context: Any) -> None:
    """Score with the rubric; equal facts get one assessment (the rubric is a pure function of them)."""
    payload = context.assessments.get(facts)
    if payload is None:
        assessment = risk.assess_agent(facts) if isinstance(facts, risk.AgentFacts) else risk.assess_tool(facts)
        payload = context.assessments[facts] = assessment.to_dict()
    row.risk_tier = payload["tier"]
    row.risk_score = payload["score"]
    row.risk = payload


def _columns(model: type[Any]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


_ENTRY_COLUMNS: Final = [f.attname for f in CatalogEntry._meta.concrete_fields if not f.primary_key]
_CAPABILITY_COLUMNS: Final = ["tool_id", "name", "description", *services.CAPABILITY_HINTS]


class ChunkWriter:
    """Writes chunks of new entities: their rows, relations, search entries and audit events."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def write(
        self, copies: BackgroundCopies, model: type[Agent] | type[Tool], prepared: list[Any], ids: Iterator[int]
    ) -> None:
        if not prepared:
            return
        for new, pk in zip(prepared, ids, strict=False):
            new.row.id = pk
        _assess_all(prepared, model, self.context)
        columns = _columns(model)
        copies.copy_rows(model, columns, list(map(attrgetter(*columns), (new.row for new in prepared))))
        copies.copy_rows(
            Capability,
            _CAPABILITY_COLUMNS,
            [
                (new.row.id, cap["name"], cap["description"], *(cap[hint] for hint in services.CAPABILITY_HINTS))
                for new in prepared
                for cap in new.capabilities
            ],
        )
        copies.copy_rows(
            Agent.models_used.through,
            ["agent_id", "aimodel_id"],
            [(new.row.id, model_id) for new in prepared for model_id in new.model_ids],
        )
        copies.copy_rows(CatalogEntry, _ENTRY_COLUMNS, _entry_rows(prepared, model))
        events = audit_event_rows(_audit_events(prepared, model, self.context))
        copies.copy_rows(AuditEvent, AUDIT_EVENT_COLUMNS, audit_event_tuples(events))


def _assess_all(prepared: list[Any], model: type[Agent] | type[Tool], context: Any) -> None:
    now = timezone.now()
    for new in prepared:
        row = new.row
        row.created_at = row.updated_at = now
        if model is Tool:
            row.capabilities_hash = services.capabilities_hash(new.capabilities)
            facts: risk.ToolFacts | risk.AgentFacts = risk.ToolFacts(
                data_class=row.data_class,
                reach=row.reach,
                credential_scope=row.credential_scope,
                annotations_trusted=False,
                capabilities=tuple(
                    risk.CapabilityFacts(**{k: cap.get(k) for k in ("name", *services.CAPABILITY_HINTS)})
                    for cap in new.capabilities
                ),
            )
        else:
            facts = scoring.agent_facts(row)
        _assess(row, facts, context)


def _entry_rows(prepared: list[Any], model: type[Agent] | type[Tool]) -> list[tuple[Any, ...]]:
    """Search rows: the services' values, in column order."""
    if model is Tool:
        # Capability names in the order the services read them back (by name), so both write the same search text.
        entries = [
            search_index.tool_entry_values(new.row, sorted(cap["name"] for cap in new.capabilities)) for new in prepared
        ]
    else:
        entries = [search_index.agent_entry_values(new.row) for new in prepared]
    if not entries:
        return []
    kind = model._meta.model_name
    defaults = {f.attname: f.get_default() for f in CatalogEntry._meta.concrete_fields if not f.primary_key}
    missing = {name: defaults[name] for name in _ENTRY_COLUMNS if name not in entries[0] and name != "entity_id"}
    in_order = itemgetter(*_ENTRY_COLUMNS)
    rows = []
    for new, entry in zip(prepared, entries, strict=True):
        if missing:
            entry = {**missing, **entry}
        entry["kind"] = kind
        entry["entity_id"] = new.row.id
        rows.append(in_order(entry))
    return rows


def _audit_events(prepared: list[Any], model: type[Agent] | type[Tool], context: Any) -> list[dict[str, Any]]:
    name = model._meta.model_name
    teams = {team.pk: team.name for team in context.teams.values()}
    return [
        {
            "action": f"catalog.{name}.created",
            "object_type": f"catalog.{name}",
            "object_id": new.row.id,
            "object_repr": new.row.name,
            "changes": {
                "name": new.row.name,
                "owner": teams[new.row.owner_id],
                "source": new.entity.source,
                "index": new.entity.index,
                "imported": True,
            },
        }
        for new in prepared
    ]


def link_calls(prepared: list[Any], context: Any) -> None:
    """Link the called agents once every new one is written: an agent may call one defined after it. A call to an
    agent that exists nowhere is a warning, not an error (descriptors often name agents not catalogued yet)."""
    wanted = {name for new in prepared for name in new.calls}
    if not wanted:
        return
    by_name = dict(Agent.objects.filter(name__in=wanted).values_list("name", "pk"))
    through = Agent.calls.through
    through.objects.bulk_create(
        [
            through(from_agent_id=new.row.id, to_agent_id=by_name[name])
            for new in prepared
            for name in new.calls
            if name in by_name
        ],
        ignore_conflicts=True,
    )
    for new in prepared:
        missing = sorted({name for name in new.calls if name not in by_name})
        if missing:
            context.report.warnings.append(
                f"{new.entity.source} document {new.entity.index}: calls unknown agent(s) {', '.join(missing)}"
            )
