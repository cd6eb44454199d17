from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.exporting import catalog_export_backstage, catalog_export_entities
from catalog.importing import import_inputs
from catalog.models import Agent, AIModel, Capability, CatalogEntry, Location, Team, Tool
from catalog.teams import team_create
from portal.audit import audit_verify_chain
from portal.models import AuditEvent
from portal.testing.servers import LocalHttpServer, Reply

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).parent / "samples"
BACKSTAGE = (SAMPLES / "import" / "catalog-info.yaml").read_bytes()


def _counts() -> dict[str, int]:
    return {
        "teams": Team.objects.count(),
        "agents": Agent.objects.count(),
        "tools": Tool.objects.count(),
        "capabilities": Capability.objects.count(),
        "entries": CatalogEntry.objects.count(),
        "models": AIModel.objects.count(),
    }


def _report(report: Any) -> dict[str, int]:
    return {key: getattr(report, key) for key in ("created", "updated", "unchanged", "skipped", "failed")}


@pytest.fixture
def engineering(db: None) -> Team:
    return team_create(name="engineering", title="Engineering")


def test_it_imports_a_backstage_file_mixing_kinds(engineering: Team) -> None:
    report = import_inputs([("catalog-info.yaml", BACKSTAGE)])

    assert report.failed == 0, [str(e) for e in report.errors]
    assert report.created >= 4
    assert any(item["kind"] == "Component" and "service" in item["reason"] for item in report.skipped_items)
    agent = Agent.objects.get(name="release-notes-agent")
    assert (agent.owner.name, agent.autonomy_level, agent.human_in_loop) == ("platform-ai", 3, "per_action")
    assert set(agent.models_used.values_list("name", flat=True)) == {"claude-sonnet-4", "gpt-4o-mini"}
    assert "github-mcp" in agent.requested_tools
    tool = Tool.objects.get(name="github-mcp")
    assert tool.capabilities.count() >= 1 and tool.capabilities_hash
    assert tool.risk["explanation"].startswith(tool.risk_tier)
    assert CatalogEntry.objects.filter(kind="tool", name="github-mcp").exists()
    assert audit_verify_chain().ok


def test_reimporting_the_same_input_changes_nothing(engineering: Team) -> None:
    import_inputs([("catalog-info.yaml", BACKSTAGE)])
    before_counts, before_events = _counts(), AuditEvent.objects.count()
    before_updated = dict(Agent.objects.values_list("name", "updated_at"))

    report = import_inputs([("catalog-info.yaml", BACKSTAGE)])

    assert report.created == report.updated == report.failed == 0
    assert report.unchanged >= 4
    assert _counts() == before_counts
    assert AuditEvent.objects.count() == before_events
    assert dict(Agent.objects.values_list("name", "updated_at")) == before_updated


def test_changed_input_updates_in_place(engineering: Team) -> None:
    import_inputs([("catalog-info.yaml", BACKSTAGE)])
    changed = BACKSTAGE.replace(b"title: Release Notes Agent", b"title: Release Notes Bot")
    # Lowering is written at once (a raise to 4 or 5 waits for an approval: runtime/tests/test_autonomy_doors.py).
    changed = changed.replace(b'agentportal.io/autonomy-level: "3"', b'agentportal.io/autonomy-level: "1"')

    report = import_inputs([("catalog-info.yaml", changed)])

    assert (report.updated, report.created, report.failed) == (1, 0, 0)
    agent = Agent.objects.get(name="release-notes-agent")
    assert (agent.title, agent.autonomy_level) == ("Release Notes Bot", 1)
    assert any(f["code"] == "A" and f["points"] == 0 for f in agent.risk["factors"])
    assert Agent.objects.filter(name="release-notes-agent").count() == 1


def test_mcp_server_json_needs_an_owner_and_keeps_secret_names_only(engineering: Team) -> None:
    content = (SAMPLES / "mcp" / "server.json").read_bytes()
    without_owner = import_inputs([("server.json", content)])
    assert without_owner.failed == 1
    assert "owner" in without_owner.errors[0].field

    report = import_inputs([("server.json", content)], default_owner="engineering")
    assert report.created == 1, [str(e) for e in report.errors]
    tool = Tool.objects.get()
    assert tool.registry_name and "/" in tool.registry_name
    assert tool.secret_names
    raw = json.loads(content)
    secret_values = _secret_values(raw)
    stored = json.dumps(list(Tool.objects.values()), default=str) + json.dumps(
        list(AuditEvent.objects.values()), default=str
    )
    for value in secret_values:
        assert value not in stored
    assert import_inputs([("server.json", content)], default_owner="engineering").unchanged == 1


def _secret_values(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("isSecret") or node.get("is_secret"):
            found += [str(node[key]) for key in ("value", "default") if node.get(key)]
        for value in node.values():
            found += _secret_values(value)
    elif isinstance(node, list):
        for value in node:
            found += _secret_values(value)
    return found


@pytest.mark.parametrize("sample", ["agent-card-v1.json", "agent-card-v0.3.json", "agent-card-hybrid.json"])
def test_agent_cards_import_with_an_owner(engineering: Team, sample: str) -> None:
    report = import_inputs([(sample, (SAMPLES / "a2a" / sample).read_bytes())], default_owner="engineering")
    assert report.created == 1, [str(e) for e in report.errors]
    agent = Agent.objects.get()
    assert agent.a2a_endpoint.startswith("http")
    assert agent.owner == engineering


def test_dry_run_writes_nothing(engineering: Team) -> None:
    before = (_counts(), AuditEvent.objects.count())
    report = import_inputs([("catalog-info.yaml", BACKSTAGE)], dry_run=True)
    assert report.created >= 4 and report.dry_run
    assert (_counts(), AuditEvent.objects.count()) == before


BAD_DOCS = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: Not_A_Label}
spec: {type: ai-agent, lifecycle: production, owner: engineering}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: orphan-agent}
spec: {type: ai-agent, lifecycle: production, owner: no-such-team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: xss-agent, description: "<script>alert(1)</script> hello"}
spec: {type: ai-agent, lifecycle: production, owner: engineering}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: good-agent}
spec: {type: ai-agent, lifecycle: production, owner: engineering}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: good-agent}
spec: {type: ai-agent, lifecycle: production, owner: engineering}
---
apiVersion: backstage.io/v1alpha1
kind: Spaceship
metadata: {name: enterprise}
"""


def test_bad_documents_fail_alone_with_document_and_field(engineering: Team) -> None:
    report = import_inputs([("bad.yaml", BAD_DOCS.encode())])

    assert list(Agent.objects.values_list("name", flat=True)) == ["good-agent"]
    by_index = {issue.index: issue for issue in report.errors}
    assert "metadata.name" in by_index[0].field
    assert "owner" in by_index[1].field and "no-such-team" in by_index[1].message
    assert by_index[2].field == "description" and "script" in by_index[2].message
    assert "good-agent" in by_index[4].message and "3 and 4" in by_index[4].message
    assert report.created == 1 and report.failed == 4
    assert any(item["kind"] == "Spaceship" for item in report.skipped_items)
    assert audit_verify_chain().ok


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b]\n",
            "alias",
        ),
        (b"x: " + b"[" * 500 + b"]" * 500 + b"\n", "nest"),
        (b"\x00\x01\x02\xff\xfe garbage \x00", ""),
        (b"apiVersion: backstage.io/v1alpha1\nkind: Group\n" + b"# pad\n" * (50 * 1024 * 1024 // 6), "limit"),
    ],
    ids=["yaml-bomb", "deep-nesting", "binary", "too-large"],
)
def test_hostile_inputs_are_refused_clearly(engineering: Team, content: bytes, expected: str) -> None:
    before = _counts()
    report = import_inputs([("hostile.yaml", content)])
    assert report.failed >= 1 and report.created == 0
    assert report.errors[0].source == "hostile.yaml"
    assert expected.lower() in str(report.errors[0]).lower()
    assert _counts() == before


def test_a_non_maintainer_cannot_import_into_another_teams_catalog(engineering: Team, make_user: Any) -> None:
    outsider = make_user("mallory")
    doc = b"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: sneaky}\nspec: {type: ai-agent, lifecycle: production, owner: engineering}\n"
    report = import_inputs([("x.yaml", doc)], actor=outsider)
    assert report.failed == 1 and "maintainer" in report.errors[0].message
    assert not Agent.objects.exists()


def test_export_then_import_into_an_empty_portal_gives_the_same_catalog(engineering: Team) -> None:
    import_inputs([("catalog-info.yaml", BACKSTAGE)])
    import_inputs([("server.json", (SAMPLES / "mcp" / "server.json").read_bytes())], default_owner="engineering")
    import_inputs([("card.json", (SAMPLES / "a2a" / "agent-card-v1.json").read_bytes())], default_owner="engineering")
    before = catalog_export_entities()
    exported = catalog_export_backstage()

    for model in (Agent, Tool):
        for instance in model.objects.all():
            instance.grants.all().delete()
            instance.delete()
    AIModel.objects.all().delete()
    CatalogEntry.objects.all().delete()
    Team.objects.all().delete()

    report = import_inputs([("export.yaml", exported.encode())])
    assert report.failed == 0, [str(e) for e in report.errors]
    assert catalog_export_entities() == before
    assert catalog_export_backstage() == exported


def test_catalog_import_command_reports_and_exits_1_on_failure(engineering: Team, tmp_path: Path, capsys: Any) -> None:
    good = tmp_path / "catalog"
    good.mkdir()
    (good / "catalog-info.yaml").write_bytes(BACKSTAGE)
    call_command("catalog_import", str(good))
    assert "created" in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text(BAD_DOCS)
    with pytest.raises(CommandError) as excinfo:
        call_command("catalog_import", str(tmp_path / "bad.yaml"))
    assert excinfo.value.returncode == 1


def test_catalog_import_discovers_an_agent_card_with_fallback(engineering: Team, settings: Any, capsys: Any) -> None:
    card = (SAMPLES / "a2a" / "agent-card-v0.3.json").read_bytes()
    with LocalHttpServer(
        {"/.well-known/agent.json": Reply(body=card, headers={"Content-Type": "application/json"})}
    ) as server:
        settings.SSRF_ALLOWLIST = ["127.0.0.1"]
        call_command("catalog_import", server.base_url, "--owner", "engineering")
        paths = [request.path for request in server.requests]
    assert paths == ["/.well-known/agent-card.json", "/.well-known/agent.json"]
    assert Agent.objects.count() == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:1/x.yaml",
        "file:///etc/passwd",
        "http://[::ffff:127.0.0.1]/a.json",
    ],
)
def test_import_from_url_refuses_internal_addresses(engineering: Team, url: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        call_command("catalog_import", url)
    assert "not allowed" in str(excinfo.value) or "refused" in str(excinfo.value).lower()


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_a_git_location_syncs_and_marks_vanished_entities_orphaned(
    engineering: Team, tmp_path: Path, settings: Any
) -> None:
    from catalog.locations import location_create, location_sync

    settings.LOCATION_ALLOW_LOCAL_GIT = True
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "catalog-info.yaml").write_bytes(BACKSTAGE)
    _git("add", ".", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "catalog", cwd=work)

    location = location_create(actor=None, kind="git", target=str(work), default_owner="engineering")
    report = location_sync(location_id=location.pk)
    assert report is not None and report.created >= 4
    location.refresh_from_db()
    assert location.last_outcome == Location.Outcome.OK
    assert Agent.objects.get(name="release-notes-agent").source_location == location

    trimmed = BACKSTAGE.split(b"\n---\nkind: Component\nmetadata:\n  name: release-notes-agent")[0]
    docs = BACKSTAGE.decode().split("\n---\n")
    kept = [d for d in docs if "name: release-notes-agent" not in d]
    (work / "catalog-info.yaml").write_text("\n---\n".join(kept))
    _git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "drop agent", cwd=work)
    location_sync(location_id=location.pk)

    agent = Agent.objects.get(name="release-notes-agent")
    assert agent.orphaned is True
    location.refresh_from_db()
    assert location.last_report["orphaned"] == 1
    assert trimmed


def test_a_url_location_that_points_at_metadata_is_refused(engineering: Team) -> None:
    from catalog.locations import location_create
    from catalog.services import CatalogError

    with pytest.raises(CatalogError) as excinfo:
        location_create(actor=None, kind="url", target="http://169.254.169.254/catalog.yaml")
    assert "target" in excinfo.value.errors


def test_a_failed_sync_is_recorded_not_raised(engineering: Team, settings: Any) -> None:
    from catalog.locations import location_sync

    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    with LocalHttpServer({"/catalog.yaml": Reply(status=500, body="boom")}) as server:
        location = Location.objects.create(kind="url", target=server.url("/catalog.yaml"), default_owner=engineering)
        location_sync(location_id=location.pk)
    location.refresh_from_db()
    assert location.last_outcome == Location.Outcome.FAILED
    assert "500" in location.last_report["errors"][0]["message"]


def test_reserved_names_and_nul_characters_are_refused_by_field(engineering: Team) -> None:
    docs = """
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: new}
spec: {type: ai-agent, lifecycle: production, owner: engineering}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: nul-agent, description: "before\\0after"}
spec: {type: ai-agent, lifecycle: production, owner: engineering}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: fine-agent, tags: ["ok"]}
spec: {type: ai-agent, lifecycle: production, owner: engineering}
"""
    report = import_inputs([("names.yaml", docs.encode())])

    by_index = {issue.index: issue for issue in report.errors}
    assert "metadata.name" in by_index[0].field and "reserved" in by_index[0].message
    assert "description" in by_index[1].field and "NUL" in by_index[1].message
    assert list(Agent.objects.values_list("name", flat=True)) == ["fine-agent"]
    assert report.created == 1 and report.failed == 2
