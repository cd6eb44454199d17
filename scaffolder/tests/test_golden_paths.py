"""The shipped golden paths render into projects whose own quality gates pass.

Each scenario renders a golden path into a temporary folder and runs the generated project's
own CI steps (ruff lint and format, pytest and, for agents, the eval gate) with the python of a
fresh virtual environment holding only the project's declared dependencies, in a subprocess with
no API keys in the environment (`pytest -m golden_venv` runs these alone).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaffolder.golden_path import ANSWERS_FILENAME, GoldenPath, ParameterError
from scaffolder.manifest import load_golden_path, validate_parameters
from scaffolder.rendering import render_golden_path, write_rendered

GOLDEN_PATHS = Path(__file__).resolve().parents[2] / "golden_paths"
# The longest name a DNS label allows: 63 characters, so imports and paths hit line limits.
LONGEST_LABEL = "a" + "-b" * 31
SUBPROCESS_TIMEOUT_SECONDS = 180
MCP_SERVER_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
# Secrets and settings that must not leak from the developer's shell into generated projects.
_SCRUBBED_ENV_PREFIXES = ("OPENAI_", "ANTHROPIC_", "AGENT_", "OTEL_", "DJANGO_", "PYTEST_", "MCP_", "PORTAL_")
_SCRUBBED_ENV_MARKERS = ("API_KEY", "TOKEN", "SECRET", "PASSWORD")

SCENARIOS: list[tuple[str, dict[str, Any]]] = [
    (
        "python-agent",
        {
            "name": "incident-helper",
            "description": 'Triages "P1" incidents: pages, summarises & suggests fixes',
            "owner": "sre-team",
            "agent_type": "sre",
            "tools": ["github", "pagerduty"],
        },
    ),
    (
        "python-agent",
        {
            "name": LONGEST_LABEL,
            "description": "Reviews pull requests.",
            "owner": "dev-experience",
            "agent_type": "code_review",
            "autonomy_level": 5,
            "model": "gpt-4o-mini",
            "human_approval": False,
        },
    ),
    (
        "mcp-server",
        {"name": "items-api", "description": "Look up work items for agents.", "owner": "platform"},
    ),
    (
        "mcp-server",
        {
            "name": LONGEST_LABEL,
            "description": "Restricted records, with example write tools.",
            "owner": "records-team",
            "transport": "stdio",
            "data_class": "restricted",
            "include_example_write": True,
        },
    ),
]
SCENARIO_IDS = [f"{name}-{index}" for index, (name, _) in enumerate(SCENARIOS)]


def load(name: str) -> GoldenPath:
    return load_golden_path(GOLDEN_PATHS / name)


def clean_environment(project: Path) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_ENV_PREFIXES) and not any(marker in key for marker in _SCRUBBED_ENV_MARKERS)
    }
    environment.update(
        {
            "PYTHONPATH": str(project),
            "PYTHONDONTWRITEBYTECODE": "1",
            # The portal's pytest plugins (django, playwright) have no business in a generated project.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
    )
    return environment


def assert_succeeds(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def test_the_length_helper_builds_the_longest_dns_label() -> None:
    assert len(LONGEST_LABEL) == 63
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", LONGEST_LABEL)


@pytest.mark.parametrize("name", ["python-agent", "mcp-server"])
def test_it_loads_the_shipped_golden_path(name: str) -> None:
    golden_path = load(name)
    assert golden_path.name == name
    assert golden_path.steps[0]["action"] == "render"
    assert {"name", "description", "owner"} <= set(golden_path.parameters_schema["required"])


@pytest.mark.parametrize(("name", "values"), SCENARIOS, ids=SCENARIO_IDS)
def test_it_renders_byte_identical_output_twice(name: str, values: dict[str, Any]) -> None:
    assert render_golden_path(load(name), values) == render_golden_path(load(name), dict(values))


def declared_requirements(project: Path) -> list[str]:
    """What the generated pyproject.toml declares: its dependencies and its dev extra, nothing else."""
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [*metadata["dependencies"], *metadata["optional-dependencies"]["dev"]]


@pytest.fixture(scope="module")
def golden_venvs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One fresh virtual environment per golden path, with only the generated project's declared dependencies,
    installed from the package index as a user would (uv from the portal's venv, for speed)."""
    made: dict[tuple[str, ...], Path] = {}

    def venv_for(project: Path) -> Path:
        requirements = tuple(sorted(declared_requirements(project)))
        if requirements not in made:
            folder = tmp_path_factory.mktemp("venv")
            uv = Path(sys.executable).parent / "uv"
            subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(folder)], check=True)
            installed = subprocess.run(
                [str(uv), "pip", "install", "--quiet", "--python", str(folder / "bin" / "python"), *requirements],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert installed.returncode == 0, installed.stderr[-4000:]
            made[requirements] = folder
        return made[requirements] / "bin" / "python"

    return venv_for


def run_in(python: Path, project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *arguments],
        cwd=project,
        env=clean_environment(project),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.golden_venv
@pytest.mark.parametrize(("name", "values"), SCENARIOS, ids=SCENARIO_IDS)
def test_it_generates_a_project_whose_own_ci_passes_in_a_clean_venv(
    name: str, values: dict[str, Any], tmp_path: Path, golden_venvs: Any
) -> None:
    project = tmp_path / "project"
    write_rendered(render_golden_path(load(name), values), project)
    python = golden_venvs(project)

    # The steps of the generated .github/workflows/ci.yml, with the venv's own tools.
    assert_succeeds(run_in(python, project, "-m", "ruff", "check", "--no-cache", "."))
    assert_succeeds(run_in(python, project, "-m", "ruff", "format", "--no-cache", "--check", "."))
    assert_succeeds(run_in(python, project, "-m", "pytest", "-q", "-p", "no:cacheprovider"))
    if name == "python-agent":
        gate = run_in(python, project, "-m", "evals")
        assert_succeeds(gate)
        assert "PASS" in gate.stdout
        failing_gate = run_in(python, project, "-m", "evals", "--threshold", "1.01")
        assert failing_gate.returncode == 1
        assert "FAIL" in failing_gate.stdout


def test_it_describes_the_agent_in_its_catalog_descriptor() -> None:
    files = render_golden_path(load("python-agent"), SCENARIOS[0][1])
    entity = yaml.safe_load(files["catalog-info.yaml"])
    assert entity["kind"] == "Component"
    assert entity["metadata"]["name"] == "incident-helper"
    assert entity["metadata"]["description"] == SCENARIOS[0][1]["description"]
    assert entity["spec"] == {
        "type": "ai-agent",
        "lifecycle": "experimental",
        "owner": "sre-team",
        "consumesApis": ["api:github", "api:pagerduty"],
    }
    assert entity["metadata"]["annotations"] == {
        "agentportal.io/agent-type": "sre",
        "agentportal.io/autonomy-level": "2",
        "agentportal.io/human-in-loop": "per_action",
        "agentportal.io/models": "test",
        "agentportal.io/data-class": "internal",
        "agentportal.io/environments": "production",
    }
    unsupervised = yaml.safe_load(render_golden_path(load("python-agent"), SCENARIOS[1][1])["catalog-info.yaml"])
    assert unsupervised["metadata"]["annotations"]["agentportal.io/human-in-loop"] == "none"
    assert unsupervised["spec"]["consumesApis"] == []


@pytest.mark.django_db
def test_what_the_agent_generates_imports_cleanly_with_what_onboarding_needs(make_team: Any) -> None:
    from catalog import services as catalog
    from catalog.importing import import_inputs
    from catalog.models import Agent

    values = {**SCENARIOS[0][1], "data_class": "confidential", "environments": ["staging", "production"]}
    make_team(values["owner"])
    for tool in values["tools"]:
        catalog.tool_create(actor=None, data={"name": tool, "owner": values["owner"], "kind": "cli"})
    catalog.model_upsert(data={"name": "test"})  # a model the catalog knows (an unknown one is a warning)
    files = render_golden_path(load("python-agent"), values)

    report = import_inputs([("catalog-info.yaml", files["catalog-info.yaml"])])

    assert report.ok, report.errors
    assert report.warnings == []
    agent = Agent.objects.get(name=values["name"])
    assert agent.data_class == "confidential"
    assert agent.environments == ["staging", "production"]
    assert (agent.autonomy_level, agent.human_in_loop) == (2, "per_action")
    assert sorted(agent.requested_tools) == values["tools"]


def test_it_describes_the_mcp_server_for_the_registry_and_the_catalog() -> None:
    values = SCENARIOS[3][1]
    files = render_golden_path(load("mcp-server"), values)
    server = json.loads(files["server.json"])
    assert server["$schema"] == MCP_SERVER_SCHEMA_URL
    assert server["name"] == f"io.github.records-team/{LONGEST_LABEL}"
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", server["name"])
    assert server["packages"][0]["transport"] == {"type": "stdio"}
    entity = yaml.safe_load(files["catalog-info.yaml"])
    assert entity["kind"] == "API"
    assert entity["spec"]["type"] == "mcp-server"
    assert entity["spec"]["owner"] == "records-team"
    package = LONGEST_LABEL.replace("-", "_")
    # One list of tools feeds the server (tools.json), the catalog and the registry.
    served = json.loads(files[f"{package}/tools.json"])
    assert [tool["name"] for tool in served] == ["get_item", "list_items", "create_item", "delete_item"]
    assert json.loads(entity["metadata"]["annotations"]["agentportal.io/capabilities"]) == served
    assert server["_meta"]["io.modelcontextprotocol.registry/publisher-provided"]["tools"] == served
    assert json.loads(entity["spec"]["definition"])["tools"] == served
    assert f"{package}/write_tools.py" in files
    read_only = render_golden_path(load("mcp-server"), SCENARIOS[2][1])
    assert "items_api/write_tools.py" not in read_only
    assert "tests/test_write_tools.py" not in read_only


async def _live_tools(client: Any) -> list[dict[str, Any]]:
    listed = await client.list_tools()
    return [
        {"name": tool.name, **tool.annotations.model_dump(by_alias=True, exclude_none=True)} for tool in listed.tools
    ]


def live_tools_of(project: Path, package: str) -> dict[str, dict[str, Any]]:
    """tools/list of the generated server, built from the generated code and asked through the MCP client."""
    import asyncio
    import importlib

    from mcp import Client

    sys.path.insert(0, str(project))
    try:
        server = importlib.import_module(f"{package}.server").build_server()

        async def ask() -> list[dict[str, Any]]:
            async with Client(server) as client:
                return await _live_tools(client)

        listed = asyncio.run(ask())
    finally:
        sys.path.remove(str(project))
        for module in [name for name in sys.modules if name == package or name.startswith(f"{package}.")]:
            del sys.modules[module]
    names = {"readOnlyHint": "read_only", "destructiveHint": "destructive", "idempotentHint": "idempotent"}
    return {
        tool["name"]: {our: tool[mcp] for mcp, our in {**names, "openWorldHint": "open_world"}.items()}
        for tool in listed
    }


@pytest.mark.django_db
@pytest.mark.parametrize("descriptor", ["catalog-info.yaml", "server.json"])
@pytest.mark.parametrize("scenario", [2, 3], ids=["streamable-http", "stdio-with-writes"])
def test_what_the_mcp_server_generates_imports_cleanly_and_matches_its_live_tools(
    descriptor: str, scenario: int, tmp_path: Path, make_team: Any
) -> None:
    from catalog.importing import import_inputs
    from catalog.models import Tool

    values = SCENARIOS[scenario][1]
    make_team(values["owner"])
    project = tmp_path / "project"
    files = render_golden_path(load("mcp-server"), values)
    write_rendered(files, project)

    report = import_inputs([(descriptor, files[descriptor])], default_owner=values["owner"])

    assert report.ok, report.errors
    assert report.warnings == []
    tool = Tool.objects.get(registry_name=f"io.github.{values['owner']}/{values['name']}")
    declared = {
        capability.name: {
            "read_only": capability.read_only,
            "destructive": capability.destructive,
            "idempotent": capability.idempotent,
            "open_world": capability.open_world,
        }
        for capability in tool.capabilities.all()
    }
    assert declared == live_tools_of(project, values["name"].replace("-", "_"))
    assert tool.data_class == values.get("data_class", "internal")
    assert tool.version == "0.1.0"
    if values.get("transport") == "stdio":
        assert tool.transport == "stdio"
    else:
        assert (tool.transport, tool.endpoint_url) == ("streamable_http", "http://127.0.0.1:8000/mcp")
    if descriptor == "catalog-info.yaml":  # what the onboarding checks need beyond the registry's fields
        assert (tool.reach, tool.credential_scope, tool.auth_scheme) == ("closed", "none", "none")


@pytest.mark.parametrize("name", ["python-agent", "mcp-server"])
def test_it_escapes_free_text_in_every_structured_file(name: str) -> None:
    tricky = 'Say "hi": it\'s {{ 7*7 }} # not a comment\\n & <b>'
    values = dict(SCENARIOS[0][1] if name == "python-agent" else SCENARIOS[2][1], description=tricky)
    files = render_golden_path(load(name), values)
    assert yaml.safe_load(files["catalog-info.yaml"])["metadata"]["description"] == tricky
    assert tomllib.loads(files["pyproject.toml"].decode())["project"]["description"] == tricky
    assert yaml.safe_load(files[ANSWERS_FILENAME])["answers"]["description"] == tricky
    assert tricky.encode() in files["README.md"]
    if name == "mcp-server":
        assert json.loads(files["server.json"])["description"] == tricky


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"name": "json"}, "name"),  # would shadow the standard library
        ({"name": "class"}, "name"),  # a Python keyword
        ({"name": "9lives"}, "name"),  # a package name cannot start with a digit
        ({"autonomy_level": 6}, "autonomy_level"),
        ({"agent_type": "wizard"}, "agent_type"),
        ({"tools": ["GitHub"]}, "tools"),
        ({"model": "gpt 4\nrm -rf"}, "model"),
    ],
)
def test_it_validates_agent_parameters_field_by_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(load("python-agent"), {**SCENARIOS[0][1], **values})
    assert set(caught.value.errors) == {field}


def test_it_keeps_mcp_descriptions_within_the_registry_limit() -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(load("mcp-server"), {**SCENARIOS[2][1], "description": "x" * 101})
    assert set(caught.value.errors) == {"description"}
