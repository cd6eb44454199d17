"""`/api/v1/scaffolder/`: templates with their schema, preview, runs (start, read, retry), token scopes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from scaffolder import registering, services
from scaffolder.models import ScaffoldRun
from scaffolder.tests.conftest import AGENT_VALUES

pytestmark = pytest.mark.django_db

TEMPLATES = "/api/v1/scaffolder/templates/"
RUNS = "/api/v1/scaffolder/runs/"


@pytest.fixture
def alice_api(world: dict[str, Any], token_client: Callable[..., Any]) -> Any:
    return token_client(world["alice"], scopes=["read", "write"])


def test_it_lists_templates_with_their_json_schema(alice_api: Any) -> None:
    body = alice_api.get(TEMPLATES).json()
    by_name = {item["name"]: item for item in body["results"]}
    assert set(by_name) == {"mcp-server", "python-agent"}
    agent = by_name["python-agent"]
    assert agent["version"] == "1.1.0"
    assert agent["parameters_schema"]["properties"]["autonomy_level"]["maximum"] == 5
    assert [step["action"] for step in agent["steps"]][:3] == ["render", "git_commit", "publish"]


def test_it_retrieves_one_template_with_its_versions(alice_api: Any) -> None:
    body = alice_api.get(f"{TEMPLATES}mcp-server/").json()
    assert body["name"] == "mcp-server"
    assert [version["version"] for version in body["versions"]] == ["1.1.0"]
    assert len(body["versions"][0]["content_hash"]) == 64
    assert alice_api.get(f"{TEMPLATES}nope/").status_code == 404


def test_preview_returns_every_file_and_writes_nothing(world: dict[str, Any], token_client: Callable[..., Any]) -> None:
    reader = token_client(world["alice"], scopes=["read"])  # a dry run is a read

    response = reader.post(f"{TEMPLATES}python-agent/preview/", {"values": AGENT_VALUES}, format="json")

    assert response.status_code == 200, response.content
    files = {item["path"]: item for item in response.json()["files"]}
    assert files["catalog-info.yaml"]["encoding"] == "utf-8"
    assert yaml.safe_load(files["catalog-info.yaml"]["content"])["metadata"]["name"] == "incident-helper"
    assert files["catalog-info.yaml"]["size"] == len(files["catalog-info.yaml"]["content"].encode())
    assert not ScaffoldRun.objects.exists()


def test_preview_encodes_binary_files_as_base64(db: None, tmp_path: Path, token_client: Callable[..., Any]) -> None:
    import shutil

    from scaffolder.manifest import load_golden_path
    from scaffolder.tests.conftest import FIXTURES

    folder = tmp_path / "tiny-service"
    shutil.copytree(FIXTURES / "tiny-service", folder)
    registering.template_register(golden_path=load_golden_path(folder), builtin_folder="tiny-service")
    client = token_client(scopes=["read"])
    response = client.post(f"{TEMPLATES}tiny-service/preview/", {"values": {"name": "svc"}}, format="json")
    logo = next(item for item in response.json()["files"] if item["path"] == "logo.png")
    assert logo["encoding"] == "base64"
    assert base64.b64decode(logo["content"]).startswith(b"\x89PNG")


def test_preview_refuses_bad_values_field_by_field(alice_api: Any) -> None:
    response = alice_api.post(
        f"{TEMPLATES}python-agent/preview/",
        {"values": {**AGENT_VALUES, "name": "{{ 7*7 }}", "autonomy_level": "high"}},
        format="json",
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"name", "autonomy_level"}
    assert fields["autonomy_level"] == ["Must be an integer."]


def test_it_starts_a_run_and_reports_its_steps(alice_api: Any, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = alice_api.post(
            RUNS, {"template": "python-agent", "values": AGENT_VALUES, "publisher": "none"}, format="json"
        )
    assert response.status_code == 202, response.content
    assert len(callbacks) == 1  # queued for a worker
    body = response.json()
    assert body["state"] == "queued"
    assert body["values"]["autonomy_level"] == 2  # defaults filled in
    assert [step["step_id"] for step in body["steps"]] == ["render", "commit", "publish", "register", "grants"]

    services.run_execute(run_id=body["id"])
    run = alice_api.get(f"{RUNS}{body['id']}/").json()
    assert run["state"] == "succeeded"
    assert run["catalog_entity"] == {
        "kind": "agent",
        "name": "incident-helper",
        "url": "/api/v1/agents/incident-helper/",
    }
    assert len(run["approval_request_ids"]) == 3
    assert run["download_url"] == f"/create/runs/{body['id']}/download/"
    assert run["steps"][0]["attempts"] == 1
    assert [item["id"] for item in alice_api.get(RUNS).json()["results"]] == [body["id"]]


def test_starting_a_run_validates_field_by_field(alice_api: Any) -> None:
    response = alice_api.post(
        RUNS, {"template": "python-agent", "values": {**AGENT_VALUES, "tools": ["jira"], "owner": "x"}}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"tools", "owner"}
    assert alice_api.post(RUNS, {"template": "nope", "values": {}}, format="json").status_code == 400


def test_it_retries_a_failed_run(world: dict[str, Any], alice_api: Any, make_bare: Any) -> None:
    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, publisher="git",
        enqueue=False,
    )  # fmt: skip
    services.run_execute(run_id=run.pk)

    make_bare("incident-helper")
    response = alice_api.post(f"{RUNS}{run.pk}/retry/")
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    assert alice_api.post(f"{RUNS}{run.pk}/retry/").status_code == 409


def test_tokens_need_the_write_scope_to_start_runs(world: dict[str, Any], token_client: Callable[..., Any]) -> None:
    reader = token_client(world["alice"], scopes=["read"])
    response = reader.post(RUNS, {"template": "python-agent", "values": AGENT_VALUES}, format="json")
    assert response.status_code == 403
    assert "write" in response.json()["error"]["message"]


def test_runs_are_private_to_their_requester(world: dict[str, Any], token_client: Callable[..., Any]) -> None:
    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, enqueue=False
    )
    other = token_client(scopes=["read", "write"])
    assert other.get(f"{RUNS}{run.pk}/").status_code == 404
    assert other.get(RUNS).json()["results"] == []
    assert other.post(f"{RUNS}{run.pk}/retry/").status_code == 404


def test_the_openapi_schema_validates_without_warnings(db: None, tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    for path in (
        "/api/v1/scaffolder/templates/",
        "/api/v1/scaffolder/templates/{name}/",
        "/api/v1/scaffolder/templates/{name}/preview/",
        "/api/v1/scaffolder/runs/",
        "/api/v1/scaffolder/runs/{id}/",
        "/api/v1/scaffolder/runs/{id}/retry/",
    ):
        assert path in schema["paths"], path
