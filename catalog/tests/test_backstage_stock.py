"""The Backstage export, ingested by Backstage's own catalog backend code (tools/backstage-validate).

Requirement: a stock Backstage catalog backend, current release with its default processors, ingests the
portal as a location without a single processing error. test_formats_backstage_export.py checks the export
against vendored schemas and a re-implementation of the rules; this runs the real thing from npm (versions
pinned in tools/backstage-validate/package-lock.json): CatalogBuilder's default entity policies and processors
(BuiltinKindsEntityProcessor and its kind validators), driven by the backend's processing orchestrator through
a registered url location, plus the MCP-server model layer. Needs Node.js and npm; skipped without them unless
the CI environment variable is set.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model

from catalog.exporting import catalog_export_backstage
from catalog.importing import import_inputs
from catalog.models import AIModel, Team, Tool
from catalog.services import agent_create, model_upsert, tool_create
from catalog.teams import team_create, team_set_member

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "backstage-validate"
SAMPLES = Path(__file__).parent / "samples"

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(900)]


def _require(program: str) -> str:
    path = shutil.which(program)
    if path:
        return path
    reason = f"{program} not found on PATH: the stock-Backstage check needs Node.js 20+ and npm"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is not skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the validator's pinned npm packages installed once (node_modules is the cache)."""
    node = _require("node")
    npm = _require("npm")
    installed = TOOL / "node_modules" / ".package-lock.json"  # npm writes it last: a complete install
    lock = TOOL / "package-lock.json"
    # One installer at a time (parallel test processes), then re-check: another may have just installed.
    with (Path(tempfile.gettempdir()) / "agent-portal-backstage-validate.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            # --ignore-scripts: nothing in the tree needs a build step (core-js' postinstall only prints a banner).
            result = subprocess.run(
                [npm, "ci", "--prefix", str(TOOL), "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return node


def validate(node: str, yaml_text: str, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    export = tmp_path / "backstage-export.yaml"
    export.write_text(yaml_text, encoding="utf-8")
    result = subprocess.run(
        [node, str(TOOL / "validate.mjs"), str(export)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode in (0, 1), f"validate.mjs crashed ({result.returncode}):\n{result.stderr}"
    return result.returncode, json.loads(result.stdout)


def build_rich_catalog() -> None:
    """Teams with members, users, models, MCP/OpenAPI/CLI tools and agents with models, calls and tools."""
    users = get_user_model().objects
    engineering = team_create(
        name="engineering", title="Engineering", description="All of engineering.", email="eng@acme.example"
    )
    cto = users.create_user(username="cto", email="cto@acme.example", first_name="Chief", last_name="Technologist")
    team_set_member(team=engineering, user=cto, role="maintainer")

    # Group platform-ai (child of engineering) + user jdoe, agents, an MCP server and an OpenAPI API.
    report = import_inputs([("catalog-info.yaml", (SAMPLES / "import" / "catalog-info.yaml").read_bytes())])
    assert report.failed == 0, [str(e) for e in report.errors]
    # An MCP registry server.json: remotes with headers, packages, secrets and tool capabilities.
    report = import_inputs(
        [("server.json", (SAMPLES / "mcp" / "server.json").read_bytes())], default_owner="platform-ai"
    )
    assert report.failed == 0, [str(e) for e in report.errors]
    report = import_inputs(
        [("card.json", (SAMPLES / "a2a" / "agent-card-v1.json").read_bytes())], default_owner="engineering"
    )
    assert report.failed == 0, [str(e) for e in report.errors]

    platform = Team.objects.get(name="platform-ai")
    smith = users.create_user(username="a.smith", email="a.smith@acme.example", first_name="A.", last_name="Smith")
    team_set_member(team=platform, user=smith)
    team_set_member(team=platform, user=users.get(username="jdoe"))
    team_set_member(team=engineering, user=smith)  # a user in two groups

    model_upsert(
        data={
            "name": "claude-sonnet-4-5",
            "title": "Claude Sonnet 4.5",
            "provider": "Anthropic",
            "model_id": "claude-sonnet-4-5-20250929",
            "hosting": "saas",
            "residency": "EU (Frankfurt)",
            "data_class": "confidential",
        }
    )
    tool_create(
        actor=None,
        data={
            "name": "kubectl",
            "title": "kubectl",
            "description": "The Kubernetes CLI",
            "owner": "engineering",
            "kind": "cli",
            "version": "1.31.0",
            "lifecycle": "production",
            "transport": "stdio",
            "auth_scheme": "mtls",
            "credential_scope": "admin",
            "reach": "closed",
            "data_class": "internal",
            "secrets": ["KUBECONFIG"],
            "tags": ["kubernetes", "Ops Tools"],
            "links": [{"url": "https://kubernetes.io/docs/reference/kubectl/", "title": "Docs"}],
            "capabilities": [{"name": "delete", "description": "Delete resources", "destructive": True}],
        },
    )
    # Every tool: the imported MCP servers (names derived by the importer), the OpenAPI API and the CLI.
    tools = sorted(Tool.objects.values_list("name", flat=True))
    agent_create(
        actor=None,
        data={
            "name": "release-captain",
            "title": "Release Captain",
            "description": "Coordinates releases.\nCalls the release-notes agent; uses kubectl.",
            "owner": "engineering",
            "lifecycle": "experimental",
            "agent_type": "sre",
            "autonomy_level": 4,
            "human_in_loop": "sampled",
            "data_class": "confidential",
            "runtime": "kubernetes",
            "models": ["claude-sonnet-4-5", "gpt-4o-mini"],
            "calls": ["release-notes-agent"],
            "tools": tools,
            "repository_url": "https://github.com/acme/release-captain",
            "tags": ["release", "sre"],
            "links": [{"url": "https://grafana.acme.example/d/rc", "title": "Dashboard"}],
            "annotations": {"pagerduty.com/service-id": "PX9999"},
        },
    )
    assert AIModel.objects.filter(name="gpt-4o-mini").exists()


def _summary(report: dict[str, Any]) -> str:
    lines = [f"{len(report['errors'])} error(s) from the stock Backstage backend:"]
    lines += [
        f"  [{e['profile']}] document {e['index']} {e['kind']} {e['name']}: {e['message']}" for e in report["errors"]
    ]
    return "\n".join(lines) + "\n\nfull report:\n" + json.dumps(report, indent=2)


def test_a_stock_backstage_backend_ingests_the_export_without_processing_errors(node: str, tmp_path: Path) -> None:
    build_rich_catalog()
    exported = catalog_export_backstage()
    documents = [d for d in yaml.safe_load_all(exported) if d]
    kinds = {d["kind"] for d in documents}
    assert {"Group", "User", "Resource", "API", "Component"} <= kinds, kinds
    assert any(d["kind"] == "API" and d["spec"]["type"] == "mcp-server" for d in documents)

    code, report = validate(node, exported, tmp_path)

    assert report["errors"] == [] and code == 0, _summary(report)
    assert report["entities"] == len(documents)
    for profile in ("stock", "model-layers"):
        assert report["profiles"][profile]["entities"] == len(documents), report["profiles"][profile]
    assert "BuiltinKindsEntityProcessor" in report["profiles"]["stock"]["processors"]
    assert "ModelProcessor" in report["profiles"]["model-layers"]["processors"]


def test_the_validator_reports_entities_the_backend_rejects(node: str, tmp_path: Path) -> None:
    build_rich_catalog()
    documents = list(yaml.safe_load_all(catalog_export_backstage()))
    agent = next(d for d in documents if d["kind"] == "Component")
    bad_name = {**agent, "metadata": {**agent["metadata"], "name": "Not a valid name!"}}
    no_owner = {**agent, "metadata": {**agent["metadata"], "name": "ownerless-agent"}}
    no_owner["spec"] = {k: v for k, v in agent["spec"].items() if k != "owner"}
    broken = yaml.safe_dump_all([*documents, bad_name, no_owner], sort_keys=False)

    code, report = validate(node, broken, tmp_path)

    assert code == 1, report
    by_index = {(e["profile"], e["index"]): e["message"] for e in report["errors"]}
    for profile in ("stock", "model-layers"):
        assert '"metadata.name" is not valid' in by_index[(profile, len(documents))], report["errors"]
        assert "must have required property 'owner'" in by_index[(profile, len(documents) + 1)], report["errors"]
