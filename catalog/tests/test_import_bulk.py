"""The bulk import's quick path writes exactly what the checked path and the services write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone
from guardian.models import GroupObjectPermission

from catalog import import_writing, importing
from catalog.bulk import BackgroundCopies
from catalog.formats import parse_document_bytes
from catalog.importing import import_inputs
from catalog.models import Agent, AIModel, Capability, CatalogEntry, Location, Team, Tool
from catalog.quick_clean import clean_check
from catalog.teams import team_create
from portal.audit import audit_verify_chain
from portal.models import AuditEvent

SAMPLES = Path(__file__).parent / "samples"
RICH = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: helper-agent}
spec: {type: ai-agent, lifecycle: production, owner: other-team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: rich-agent
  title: Rich agent
  description: "Does things.\\n\\nSecond paragraph."
  tags: [a, b-c]
  links: [{url: "https://x.example/a", title: A}, {url: "http://y.example"}]
  labels: {agentportal.io/autonomy-level: "4", agentportal.io/human-in-loop: none, agentportal.io/agent-type: sre}
  annotations:
    agentportal.io/data-class: restricted
    agentportal.io/runtime: saas
    agentportal.io/models: known-model,brand-new-model
    agentportal.io/environments: dev,prod
    agentportal.io/a2a-endpoint: https://a2a.example/agent
    agentportal.io/provider-org: Acme
    agentportal.io/version: "2.0"
    agentportal.io/skills: '[{"id":"s1","name":"Skill one","description":"d","tags":["t"]}]'
    backstage.io/source-location: url:https://github.com/acme/rich
    other.io/thing: "1"
spec:
  type: ai-agent
  lifecycle: experimental
  owner: group:default/engineering
  consumesApis: [api:rich-tool, api:nope]
  dependsOn: [component:helper-agent]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: rich-tool
  title: Rich tool
  description: Writes things.
  labels: {agentportal.io/reach: open_world, agentportal.io/credential-scope: admin, agentportal.io/auth-scheme: oauth2}
  annotations:
    agentportal.io/data-class: confidential
    agentportal.io/registry-name: io.example/rich
    agentportal.io/secrets: API_TOKEN,OTHER.KEY
    agentportal.io/capabilities: >-
      [{"name":"drop","destructive":true},{"name":"read","read_only":true,"description":"r"},{"name":"odd"}]
    agentportal.io/packages: '[{"registry_type":"npm","identifier":"@x/rich","version":"1.0.0","transport":"stdio"}]'
spec:
  type: mcp-server
  lifecycle: production
  owner: engineering
  remotes: [{type: streamable-http, url: "https://mcp.example/rich"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: openapi-tool}
spec: {type: openapi, lifecycle: deprecated, owner: engineering, definition: "openapi: 3.0.0"}
"""


@pytest.fixture
def teams(db: None) -> dict[str, Team]:
    AIModel.objects.create(name="known-model")
    return {name: team_create(name=name, title=name.title()) for name in ("engineering", "other-team")}


def _inputs() -> list[tuple[str, bytes]]:
    """Agents call only agents defined before them: one at a time, the services refuse calls to unknown agents."""
    plain = "".join(
        f"---\napiVersion: backstage.io/v1alpha1\nkind: {kind}\nmetadata: {{name: plain-{i}, tags: [t{i % 3}]}}\n"
        f"spec: {{type: {kind_type}, lifecycle: production, owner: {owner}}}\n"
        for i in range(6)
        for kind, kind_type, owner in [("Component", "ai-agent", "engineering"), ("API", "mcp-server", "other-team")][
            i % 2 :
        ][:1]
    )
    return [("rich.yaml", RICH.encode()), ("plain.yaml", plain.encode())]


def _snapshot() -> dict[str, Any]:
    """What an import wrote, without ids and times (which differ from run to run) and without where it came from
    (the services, called one entity at a time, do not record that)."""
    skipped = {"id", "created_at", "updated_at", "source_key", "source_location_id"}
    names = {("agent", pk): name for pk, name in Agent.objects.values_list("pk", "name")}
    names |= {("tool", pk): name for pk, name in Tool.objects.values_list("pk", "name")}
    entities = {
        model._meta.model_name: sorted(
            ({k: v for k, v in row.items() if k not in skipped} for row in model.objects.values()),
            key=lambda row: row["name"],
        )
        for model in (Agent, Tool)
    }
    return {
        **entities,
        "capabilities": sorted(Capability.objects.values_list("tool__name", "name", "description", "read_only",
                                                               "destructive", "idempotent", "open_world")),
        "models_used": sorted(Agent.models_used.through.objects.values_list("agent__name", "aimodel__name")),
        "calls": sorted(Agent.calls.through.objects.values_list("from_agent__name", "to_agent__name")),
        "entries": sorted(
            ({k: v for k, v in row.items() if k not in {"id", "updated_at", "entity_id"}}
             | {"entity": names[(row["kind"], row["entity_id"])]} for row in CatalogEntry.objects.values()),
            key=lambda row: (row["kind"], row["name"]),
        ),
        "permissions": sorted(
            (p.permission.codename, p.group.name, names[(p.content_type.model, int(p.object_pk))])
            for p in GroupObjectPermission.objects.select_related("permission", "group", "content_type")
        ),
        "audited": sorted(
            (e.action, e.object_type, names.get((e.object_type.removeprefix("catalog."), int(e.object_id)), ""))
            for e in AuditEvent.objects.filter(object_type__in=["catalog.agent", "catalog.tool"])
        ),
    }  # fmt: skip


def _import_and_snapshot(**kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Import in a savepoint that is rolled back afterwards, so the next variant starts from the same state."""
    with transaction.atomic():
        report = import_inputs(_inputs(), **kwargs)
        assert report.failed == 0, [str(e) for e in report.errors]
        assert audit_verify_chain().ok
        snapshot = _snapshot(), report.as_dict()
        transaction.set_rollback(True)
    return snapshot


def _without_bulk_writes(*args: Any, **kwargs: Any) -> None:
    raise DatabaseError("forced: take the one-entity-at-a-time path")


def test_bulk_writes_what_the_services_write(teams: dict[str, Team], monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    full_checks = importing._prepare_checked
    monkeypatch.setattr(
        importing, "_prepare_checked", lambda entity, *args: checked.append(entity.name) or full_checks(entity, *args)
    )
    bulk, bulk_report = _import_and_snapshot()
    assert checked == []  # every entity took the quick path
    monkeypatch.setattr(importing, "_bulk_write", _without_bulk_writes)
    one_by_one, one_by_one_report = _import_and_snapshot()

    assert bulk["agent"] and bulk["tool"] and bulk["entries"] and bulk["calls"]
    assert bulk["permissions"] == []  # owners edit by membership: neither path writes permission rows
    assert bulk == one_by_one
    assert bulk_report["created"] == one_by_one_report["created"] == 10


def test_the_quick_path_builds_the_row_the_checked_path_builds(teams: dict[str, Team]) -> None:
    team_create(name="platform-ai")
    location = Location.objects.create(kind="url", target="https://example.com/catalog.yaml")
    inputs = [*_inputs(), ("catalog-info.yaml", (SAMPLES / "import" / "catalog-info.yaml").read_bytes())]
    entities = [
        entity for source, content in inputs for entity in parse_document_bytes(content, source=source).entities
    ]
    for kind, model in (("tool", Tool), ("agent", Agent)):
        context = importing._Context(actor=None, default_owner=None, location=location, report=importing.ImportReport())
        context.teams = {team.name: team for team in Team.objects.all()}
        items = [(e, importing._service_data(e, context)) for e in entities if e.kind == kind]
        assert len(items) >= 5
        importing._register_missing_models([entity for entity, _ in items], context)
        lookups = importing._lookups([data for _, data in items], model)
        for entity, data in items:
            owner = context.teams[str(data["owner"]).removeprefix("group:").lower()]
            quick = importing._prepare_valid(entity, data, context, model, owner, lookups)
            checked = importing._prepare_checked(entity, data, context, model)
            assert quick is not None and checked is not None, entity.name
            assert vars(quick.row) == vars(checked.row) | {"created_at": quick.row.created_at}
            assert (quick.capabilities, sorted(quick.model_ids), quick.calls) == (
                checked.capabilities,
                sorted(checked.model_ids),
                checked.calls,
            )


def test_an_entity_the_quick_path_is_unsure_of_gets_the_full_checks_and_their_messages(
    teams: dict[str, Team],
) -> None:
    docs = [
        ("long-title", "metadata: {name: long-title, title: %s}" % ("T" * 250)),
        ("bad-url", 'metadata: {name: bad-url, annotations: {agentportal.io/a2a-endpoint: "not a url"}}'),
        ("bad-link", 'metadata: {name: bad-link, links: [{url: "ftp://x.example"}]}'),
    ]
    content = "---\n".join(
        f"apiVersion: backstage.io/v1alpha1\nkind: Component\n{meta}\n"
        "spec: {type: ai-agent, lifecycle: production, owner: engineering}\n"
        for _, meta in docs
    )
    report = import_inputs([("bad.yaml", content.encode())])

    problems = {(issue.index, issue.field): issue.message for issue in report.errors}
    assert problems == {
        (0, "title"): "Ensure this value has at most 200 characters (it has 250).",
        (1, "a2a_endpoint"): "Enter a valid URL.",
        (2, "links[0].url"): "'ftp://x.example' is not an http(s) URL.",
    }
    assert report.failed == 3 and not Agent.objects.exists()


def test_a_batch_the_database_refuses_is_retried_one_entity_at_a_time(teams: dict[str, Team]) -> None:
    two_with_one_registry_name = "---\n".join(
        f"apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: {name}\n"
        "  annotations: {agentportal.io/registry-name: io.example/same}\n"
        "spec: {type: mcp-server, lifecycle: production, owner: engineering}\n"
        for name in ("first-tool", "second-tool")
    )
    report = import_inputs([("dup.yaml", two_with_one_registry_name.encode())])

    assert (report.created, report.failed) == (1, 1)
    assert report.errors[0].index == 1 and report.errors[0].field == "registry_name"
    assert list(Tool.objects.values_list("name", flat=True)) == ["first-tool"]
    assert CatalogEntry.objects.count() == 1 and not GroupObjectPermission.objects.exists()
    assert audit_verify_chain().ok


VALUES: list[Any] = [None, "", "x", "x" * 64, "x" * 501, "a\x00b", "https://ok.example/", "not a url", "UPPER",
                     "ok-name", "-bad-", "production", "sre", "per_action", "restricted", "open_world", 0, 1, 3, 5, 6,
                     -1, 2**40, True, False, 1.5, "3", [], ["a"], {}, {"a": "b"}, [object()], ("t",),
                     Agent.Status.ACTIVE, Agent.Autonomy.FULL]  # fmt: skip


@pytest.mark.parametrize("model", [Agent, Tool])
def test_the_quick_field_check_never_accepts_what_full_clean_refuses(model: type[Agent] | type[Tool]) -> None:
    exclude = importing._NOT_CLEANED
    check = clean_check(model, exclude)
    accepted = 0
    for field in model._meta.fields:
        if field.name in exclude:
            continue
        for value in VALUES:
            instance = model(name="ok-name")
            setattr(instance, field.attname, value)
            if not check.passes(instance):
                continue
            accepted += 1
            before = {f.attname: getattr(instance, f.attname) for f in model._meta.fields}
            try:
                instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
            except ValidationError as error:  # pragma: no cover - the assertion names the case
                pytest.fail(f"{field.name}={value!r} passed the quick check but full_clean says {error}")
            after = {f.attname: getattr(instance, f.attname) for f in model._meta.fields}
            assert after == before, f"full_clean changed {field.name}={value!r}"
    assert accepted > 50  # the quick path is taken for ordinary values


def test_a_kind_the_database_refuses_does_not_take_the_other_kind_down(
    teams: dict[str, Team], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tools and agents are written together; when that fails, each kind is retried on its own, and only the kind
    that still fails goes one entity at a time."""
    written_alone: list[list[str]] = []
    real_bulk_write = importing._bulk_write

    def agents_refused(batches: list[importing._Batch], context: importing._Context) -> None:
        written_alone.append([batch.model._meta.model_name for batch in batches])
        real_bulk_write(batches, context)
        if any(batch.model is Agent for batch in batches):
            raise DatabaseError("forced: agents are refused in bulk")

    monkeypatch.setattr(importing, "_bulk_write", agents_refused)
    bulk, report = _import_and_snapshot()
    monkeypatch.setattr(importing, "_bulk_write", _without_bulk_writes)
    one_by_one, _ = _import_and_snapshot()

    assert written_alone == [["tool", "agent"], ["tool"], ["agent"]]
    assert bulk == one_by_one
    assert (report["created"], report["failed"]) == (10, 0)


def test_the_report_lists_tools_before_agents_as_it_always_has(teams: dict[str, Team]) -> None:
    first = import_inputs(_inputs())
    assert first.failed == 0
    extra = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: late-agent}\n"
        "spec: {type: ai-agent, lifecycle: production, owner: engineering}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: late-tool}\n"
        "spec: {type: mcp-server, lifecycle: production, owner: engineering}\n"
    )
    again = import_inputs([*_inputs(), ("late.yaml", extra.encode())])

    outcomes = [(entity["kind"], entity["outcome"]) for entity in again.outcomes]
    tools, agents = (
        outcomes[: outcomes.index(("agent", "unchanged"))],
        outcomes[outcomes.index(("agent", "unchanged")) :],
    )
    assert {kind for kind, _ in tools} == {"tool"} and {kind for kind, _ in agents} == {"agent"}
    assert tools[-1] == ("tool", "created") and agents[-1] == ("agent", "created")
    assert (again.created, again.unchanged) == (2, 10)
    assert audit_verify_chain().ok


def test_entities_from_text_without_escapes_skip_the_nul_scan() -> None:
    plain = (
        b"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a, description: plain}\n"
        b"spec: {type: ai-agent, lifecycle: production, owner: engineering}\n"
    )
    escaped = plain.replace(b"description: plain", b'description: "tab\\there"')

    assert [e.nul_free for e in parse_document_bytes(plain, source="p.yaml").entities] == [True]
    assert [e.nul_free for e in parse_document_bytes(escaped, source="e.yaml").entities] == [False]


def test_background_copies_raise_the_databases_error_and_leave_the_connection_usable(teams: dict[str, Team]) -> None:
    from django.db import IntegrityError

    from catalog.bulk import BackgroundCopies

    owner = teams["engineering"]
    row = ("agent", 1, "a", "", "", owner.pk, "low", 0, "", "production", "active", None, "", "", [], "", "", None)
    columns = [name for name in import_writing._ENTRY_COLUMNS]
    values = [dict(zip(columns, row, strict=True)) | {"updated_at": timezone.now()}]
    rows = [tuple(value[c] for c in columns) for value in values]

    def copy(times: int) -> None:
        with transaction.atomic(), BackgroundCopies() as copies:
            for _ in range(times):
                copies.copy_rows(CatalogEntry, columns, rows)

    with pytest.raises(IntegrityError):
        copy(2)  # the same (kind, entity_id) twice
    assert not CatalogEntry.objects.exists()  # the atomic block rolled back; the connection answers
    copy(1)
    assert CatalogEntry.objects.count() == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "x", "owner": "t", "index": 3, "imported": True, "none": None},
        {"b": "é ✓", "a": 2**70, "c": ""},
        {"float": 1.5, "list": [1, (2, 3)], "nested": {"z": 1, "a": None}},
        {1: "int key"},
        {"when": timezone.now()},
        {"status": Agent.Status.ACTIVE},
    ],
)
def test_an_imports_audit_event_rows_hold_what_the_database_gives_back(db: None, changes: dict[Any, Any]) -> None:
    """The import builds its events' rows in one go (plain changes not round-tripped through JSON): they must
    store what the database gives back, so the sealer hashes what was meant."""
    import json

    from portal.audit import audit_event_rows

    events = [{"action": "catalog.agent.created", "object_type": "catalog.agent", "object_id": i, "changes": changes}
              for i in range(2)]  # fmt: skip
    rows = audit_event_rows(events)
    for row in rows:
        assert row["changes"] == json.loads(json.dumps(changes, default=str, sort_keys=True))
        assert list(row["changes"]) == sorted(row["changes"])
        assert not {"sequence", "prev_hash", "hash"} & set(row)


@pytest.mark.django_db
def test_bulk_written_tables_carry_no_like_index_and_keep_their_lookups() -> None:
    """db_index=True on a CharField builds a second, LIKE-only index on PostgreSQL that every COPY maintains;
    the catalog's and the audit trail's lookups are plain equality, so only plain indexes remain."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("varchar_pattern_ops indexes are PostgreSQL's")
    tables = ["catalog_agent", "catalog_tool", "portal_auditevent"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [tables])
        indexes = cursor.fetchall()
    indexed = {(table, definition.split("(", 1)[1].split(")")[0]) for table, _, definition in indexes}
    like_only = {(table, column) for table, column in indexed if "pattern_ops" in column}
    assert like_only == {("portal_auditevent", "action varchar_pattern_ops")}  # the audit page filters by prefix
    for table, column in [("catalog_tool", "risk_tier"), ("catalog_tool", "status"), ("catalog_tool", "kind"),
                          ("catalog_tool", "source_key"), ("catalog_agent", "risk_tier"), ("catalog_agent", "status"),
                          ("catalog_agent", "source_key"), ("portal_auditevent", "hash")]:  # fmt: skip
        assert (table, column) in indexed, (table, column)


def test_new_entities_are_written_a_chunk_at_a_time_and_the_unsure_ones_after_the_copies(
    teams: dict[str, Team], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quick path's entities are copied a chunk at a time while the next chunk is validated; the ones it is
    unsure of get the full checks (which query) once those copies are done. Rows, report and audit chain come out
    as when everything is written at once, in document order."""
    whole, whole_report = _import_and_snapshot()
    unsure = {"rich-agent", "plain-2", "rich-tool"}
    checked: list[str] = []
    quick, full_checks = importing._prepare_valid, importing._prepare_checked
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    monkeypatch.setattr(
        importing, "_prepare_valid", lambda entity, *args: None if entity.name in unsure else quick(entity, *args)
    )
    monkeypatch.setattr(
        importing, "_prepare_checked", lambda entity, *args: checked.append(entity.name) or full_checks(entity, *args)
    )
    copied: list[tuple[str, int]] = []
    real_copy_rows = BackgroundCopies.copy_rows

    def copy_rows(self: BackgroundCopies, model: Any, columns: Any, rows: Any) -> None:
        if model in (Agent, Tool):
            copied.append((model._meta.model_name, len(rows)))
        real_copy_rows(self, model, columns, rows)

    monkeypatch.setattr(BackgroundCopies, "copy_rows", copy_rows)
    chunked, chunked_report = _import_and_snapshot()

    assert sorted(checked) == sorted(unsure)
    # 5 tools, the first unsure, and 5 agents, the 2nd and 4th unsure: chunks of 2 documents less the unsure ones,
    # then the ones the full checks passed
    quick_chunks = [("tool", 1), ("tool", 2), ("tool", 1), ("agent", 1), ("agent", 1), ("agent", 1)]
    assert copied == [*quick_chunks, ("tool", 1), ("agent", 2)]
    assert chunked == whole
    assert chunked_report == whole_report


def test_a_call_to_an_agent_later_in_the_file_links_and_only_a_call_to_no_agent_warns(teams: dict[str, Team]) -> None:
    agents = [("caller", "[component:callee, component:ghost]"), ("callee", "[]")]
    content = "---\n".join(
        f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}}}\n"
        f"spec: {{type: ai-agent, lifecycle: production, owner: engineering, dependsOn: {depends}}}\n"
        for name, depends in agents
    )
    report = import_inputs([("calls.yaml", content.encode())])

    assert report.created == 2 and report.failed == 0
    assert list(Agent.objects.get(name="caller").calls.values_list("name", flat=True)) == ["callee"]
    assert report.warnings == ["calls.yaml document 0: calls unknown agent(s) ghost"]
