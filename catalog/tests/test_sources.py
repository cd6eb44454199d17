"""Sources own what they created: another source naming an entity is a conflict (CLI, API import, location) unless
a platform admin adopts it; owner changes need rights on both teams, are reported, audited with the person and told
to both teams; commands act for a named person (--as)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.models import Notification
from catalog.importing import import_inputs
from catalog.models import EntitySource, Location, Tool
from catalog.teams import team_create, team_set_member
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

TOOL = """apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: github-mcp
  annotations:
    agentportal.io/capabilities: '[{{"name":"{capability}","read_only":true,"open_world":false}}]'
spec: {{type: mcp-server, lifecycle: production, owner: {owner}}}
"""
OTHER_TOOL = """apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: other-mcp}
spec: {type: mcp-server, lifecycle: production, owner: platform}
"""


@pytest.fixture
def teams(db: None, make_user: Any) -> dict[str, Any]:
    platform, payments = team_create(name="platform"), team_create(name="payments")
    admin = make_user("root", is_superuser=True)
    alice, bob = make_user("alice"), make_user("bob")
    team_set_member(team=platform, user=alice, role="maintainer")
    team_set_member(team=payments, user=bob, role="maintainer")
    return {"platform": platform, "payments": payments, "admin": admin, "alice": alice, "bob": bob}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _import(*args: str) -> tuple[int, str, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("catalog_import", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


def test_the_cli_refuses_a_silent_takeover_by_another_file(teams: dict[str, Any], tmp_path: Path) -> None:
    first = _write(tmp_path, "first.yaml", TOOL.format(owner="platform", capability="list_issues"))
    assert _import(str(first))[0] == 0
    tool = Tool.objects.get(name="github-mcp")
    assert (tool.source_kind, tool.source_key) == (EntitySource.FILE, f"{first.resolve()}#0")

    other = _write(
        tmp_path, "other.yaml", TOOL.format(owner="payments", capability="delete_repo") + "---\n" + OTHER_TOOL
    )
    code, _, err = _import(str(other), "--as", "alice")

    assert code == 1
    assert f"conflict: {other.resolve()} document 0: tool github-mcp belongs to the file {first.resolve()}" in err
    assert "--adopt" in err
    tool.refresh_from_db()
    assert tool.owner.name == "platform"
    assert list(tool.capabilities.values_list("name", flat=True)) == ["list_issues"]
    assert Tool.objects.filter(name="other-mcp").exists()  # the other documents of the file still import
    # The same file again is its own source: it may change what it created.
    first.write_text(TOOL.format(owner="platform", capability="list_pull_requests"))
    assert _import(str(first))[0] == 0
    assert list(tool.capabilities.values_list("name", flat=True)) == ["list_pull_requests"]


def test_a_platform_admin_adopts_explicitly_and_the_owner_change_is_reported_audited_and_told_to_both_teams(
    teams: dict[str, Any], tmp_path: Path
) -> None:
    first = _write(tmp_path, "first.yaml", TOOL.format(owner="platform", capability="list_issues"))
    _import(str(first))
    other = _write(tmp_path, "other.yaml", TOOL.format(owner="payments", capability="list_issues"))

    refused = _import(str(other), "--as", "alice", "--adopt")
    assert refused[0] == 1 and "only platform admins can adopt tool 'github-mcp'" in refused[2]

    code, out, _ = _import(str(other), "--as", "root", "--adopt")

    assert code == 0
    assert "owner changed: tool github-mcp: platform -> payments" in out
    assert f"adopted: tool github-mcp from the file {first.resolve()}" in out
    tool = Tool.objects.get(name="github-mcp")
    assert (tool.owner.name, tool.source_key) == ("payments", f"{other.resolve()}#0")
    adopted = AuditEvent.objects.get(action="catalog.tool.adopted")
    assert (adopted.actor_label, adopted.actor_kind) == ("root", "user")
    assert AuditEvent.objects.get(action="catalog.tool.updated").actor_label == "root"
    told = Notification.objects.filter(event="owner_changed")
    assert sorted(told.values_list("recipient__username", flat=True)) == ["alice", "bob"]
    assert "root changed the owner of tool github-mcp from team platform to team payments" in told.first().body


def test_an_owner_change_through_the_api_needs_rights_on_both_teams_and_tells_both(
    teams: dict[str, Any], api_client: Any
) -> None:
    _write_tool = import_inputs([("t.yaml", TOOL.format(owner="platform", capability="list_issues").encode())])
    assert _write_tool.ok
    api_client.force_login(teams["alice"])  # maintains platform only
    refused = api_client.patch("/api/v1/tools/github-mcp/", {"owner": "payments"}, format="json")
    assert refused.status_code == 400
    assert "payments" in json.dumps(refused.json()["error"]["fields"])
    team_set_member(team=teams["payments"], user=teams["alice"], role="maintainer")

    moved = api_client.patch("/api/v1/tools/github-mcp/", {"owner": "payments"}, format="json")

    assert moved.status_code == 200
    assert Tool.objects.get(name="github-mcp").owner.name == "payments"
    assert AuditEvent.objects.get(action="catalog.tool.updated").actor_label == "alice"
    assert set(Notification.objects.filter(event="owner_changed").values_list("recipient__username", flat=True)) == {
        "alice",
        "bob",
    }


def test_the_api_import_answers_409_naming_the_entity_and_its_source_and_writes_nothing(
    teams: dict[str, Any], api_client: Any
) -> None:
    api_client.force_authenticate(teams["admin"])
    created = api_client.post(
        "/api/v1/tools/",
        {"name": "github-mcp", "owner": "platform", "kind": "mcp_server", "data_class": "internal"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert Tool.objects.get(name="github-mcp").source_kind == EntitySource.API
    content = TOOL.format(owner="payments", capability="x") + "---\n" + OTHER_TOOL

    refused = api_client.post("/api/v1/import/", {"content": content, "filename": "x.yaml"}, format="json")

    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert "tool 'github-mcp' belongs to the API" in message and '"adopt": true' in message
    assert not Tool.objects.filter(name="other-mcp").exists()
    adopted = api_client.post(
        "/api/v1/import/", {"content": content, "filename": "x.yaml", "adopt": True}, format="json"
    )
    assert adopted.status_code == 200, adopted.content
    assert adopted.json()["adopted"][0]["from"] == "the API"
    assert Tool.objects.get(name="github-mcp").source_kind == EntitySource.IMPORT


def test_a_location_reports_an_entity_of_another_source_in_its_errors(teams: dict[str, Any]) -> None:
    import_inputs([("upload.yaml", TOOL.format(owner="platform", capability="a").encode())])
    location = Location.objects.create(kind=Location.Kind.URL, target="https://example.com/catalog-info.yaml")

    report = import_inputs(
        [("catalog-info.yaml", TOOL.format(owner="platform", capability="b").encode())], location=location
    )

    assert report.failed == 1
    assert report.conflicts[0]["current_source"] == "the upload upload.yaml"
    assert "belongs to the upload upload.yaml" in str(report.errors[0])
    assert Tool.objects.get(name="github-mcp").source_location_id is None


def test_a_location_sync_moves_an_owner_only_with_its_creators_rights_on_both_teams(teams: dict[str, Any]) -> None:
    location = Location.objects.create(
        kind=Location.Kind.URL, target="https://example.com/c.yaml", created_by=teams["alice"]
    )
    import_inputs([("c.yaml", TOOL.format(owner="platform", capability="a").encode())], location=location)

    report = import_inputs([("c.yaml", TOOL.format(owner="payments", capability="a").encode())], location=location)

    assert report.failed == 1 and "needs edit rights on both teams" in str(report.errors[0])
    assert Tool.objects.get(name="github-mcp").owner.name == "platform"


def test_commands_act_for_the_named_person(teams: dict[str, Any], tmp_path: Path, settings: Any) -> None:
    path = _write(tmp_path, "t.yaml", TOOL.format(owner="platform", capability="a"))
    assert _import(str(path))[0] == 0  # no --as outside production: the first superuser
    assert AuditEvent.objects.get(action="catalog.tool.created").actor_label == "root"

    code, _, err = _import(str(path), "--as", "nobody")
    assert code != 0 and "--as nobody: no active user has that username." in err
    settings.IS_PRODUCTION = True
    code, _, err = _import(str(path))
    assert code != 0 and "--as USERNAME is required in production mode" in err


def test_without_any_admin_a_command_acts_as_the_system_and_says_so(db: None, tmp_path: Path) -> None:
    team_create(name="platform")
    code, _, err = _import(str(_write(tmp_path, "t.yaml", TOOL.format(owner="platform", capability="a"))))
    assert code == 0 and "acting as the system" in err
    assert AuditEvent.objects.get(action="catalog.tool.created").actor_kind == "system"


def test_the_ui_records_itself_as_the_source_of_what_it_creates(teams: dict[str, Any], client: Any) -> None:
    client.force_login(teams["alice"])
    response = client.post(
        "/catalog/tools/new/",
        {"name": "ui-tool", "owner": "platform", "kind": "cli", "lifecycle": "experimental", "capabilities": "run"},
    )
    assert response.status_code == 302
    assert Tool.objects.get(name="ui-tool").source_kind == EntitySource.UI
    report = import_inputs([("t.yaml", OTHER_TOOL.replace("other-mcp", "ui-tool").encode())])
    assert report.conflicts[0]["current_source"] == "the web UI"


def test_a_location_sync_lists_the_conflict_in_its_errors_and_names_its_creator_in_the_audit(
    teams: dict[str, Any], settings: Any
) -> None:
    from catalog.locations import location_sync
    from portal.testing.servers import LocalHttpServer, Reply

    import_inputs([("upload.yaml", TOOL.format(owner="platform", capability="a").encode())])
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    document = (TOOL.format(owner="platform", capability="b") + "---\n" + OTHER_TOOL).encode()
    with LocalHttpServer({"/catalog-info.yaml": Reply(body=document)}) as server:
        location = Location.objects.create(
            kind=Location.Kind.URL, target=server.url("/catalog-info.yaml"), created_by=teams["alice"]
        )
        location_sync(location_id=location.pk)

    location.refresh_from_db()
    assert location.last_outcome == Location.Outcome.PARTIAL
    [error] = location.last_report["errors"]
    assert "tool 'github-mcp' belongs to the upload upload.yaml" in error["message"]
    assert location.last_report["conflicts"][0]["name"] == "github-mcp"
    created = AuditEvent.objects.get(action="catalog.tool.created", object_repr="other-mcp")
    assert created.actor_label == f"alice (location #{location.pk} sync)"
    assert Tool.objects.get(name="other-mcp").source_location_id == location.pk
