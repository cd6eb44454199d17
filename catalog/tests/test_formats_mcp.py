"""MCP registry server.json parsing (current camelCase and legacy snake_case)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog.formats import ParsedEntity, parse_mcp_server_json, registry_name_to_catalog_name

SAMPLES = Path(__file__).parent / "samples" / "mcp"
LEAK_MARKER = "NEVER_LEAK"

EXPECTED_WAREHOUSE: dict[str, Any] = {
    "name": registry_name_to_catalog_name("io.github.acme-data/warehouse-query"),
    "registry_name": "io.github.acme-data/warehouse-query",
    "kind": "mcp_server",
    "title": "Warehouse Query",
    "description": "Read-only SQL over the ACME analytics warehouse",
    "version": "2.3.1",
    "repository_url": "https://github.com/acme-data/warehouse-query",
    "links": [{"url": "https://acme-data.github.io/warehouse-query", "title": "Website"}],
    "packages": [
        {
            "registry_type": "npm",
            "identifier": "@acme-data/warehouse-query-mcp",
            "version": "2.3.1",
            "transport": "stdio",
            "runtime_hint": "npx",
        }
    ],
    "remotes": [
        {
            "type": "streamable-http",
            "url": "https://mcp.acme-data.example/warehouse/mcp",
            "headers": ["Authorization", "X-Tenant"],
        },
        {"type": "sse", "url": "https://mcp.acme-data.example/warehouse/sse", "headers": []},
    ],
    "endpoint_url": "https://mcp.acme-data.example/warehouse/mcp",
    "transport": "streamable_http",
    "auth_scheme": "bearer",
    "secrets": ["WAREHOUSE_TOKEN", "Authorization", "warehouse_token"],
    "capabilities": [
        {
            "name": "run_query",
            "description": "Run a read-only SQL query",
            "read_only": True,
            "destructive": False,
            "idempotent": True,
            "open_world": False,
        },
        {
            "name": "list_tables",
            "description": "List tables in a schema",
            "read_only": True,
            "destructive": None,
            "idempotent": None,
            "open_world": None,
        },
        {
            "name": "explain_plan",
            "description": None,
            "read_only": None,
            "destructive": None,
            "idempotent": None,
            "open_world": None,
        },
    ],
}


def _parse_one(content: bytes | str, source: str = "server.json") -> ParsedEntity:
    result = parse_mcp_server_json(content, source=source)
    assert result.errors == []
    [entity] = result.entities
    return entity


def _server(**fields: Any) -> str:
    return json.dumps({"name": "io.github.alice/weather", "description": "Weather", "version": "1.0.0", **fields})


@pytest.mark.parametrize("sample", ["server.json", "server-legacy-snake.json"])
def test_it_reads_the_current_and_the_snake_case_server_json_the_same_way(sample: str) -> None:
    entity = _parse_one((SAMPLES / sample).read_bytes(), source=sample)

    assert entity.kind == "tool"
    assert entity.name == EXPECTED_WAREHOUSE["name"]
    assert entity.data == EXPECTED_WAREHOUSE
    assert entity.warnings == []


def test_it_reads_the_pre_release_form_with_version_detail_and_registry_name() -> None:
    entity = _parse_one((SAMPLES / "server-prerelease.json").read_bytes())

    assert entity.data["version"] == "2.3.1"
    assert entity.data["lifecycle"] == "deprecated"
    assert entity.data["packages"] == [
        {
            "registry_type": "npm",
            "identifier": "@acme-data/warehouse-query-mcp",
            "version": "2.3.1",
            "transport": None,
            "runtime_hint": "npx",
        }
    ]
    assert entity.data["remotes"] == [
        {"type": "streamable-http", "url": "https://mcp.acme-data.example/warehouse/mcp", "headers": ["X-API-Key"]}
    ]
    assert entity.data["transport"] == "streamable_http"
    assert entity.data["auth_scheme"] == "api_key"
    assert entity.data["secrets"] == ["WAREHOUSE_TOKEN", "X-API-Key"]


@pytest.mark.parametrize("sample", ["server.json", "server-legacy-snake.json", "server-prerelease.json"])
def test_it_never_copies_a_secret_value_or_default_anywhere(sample: str) -> None:
    raw = (SAMPLES / sample).read_text()
    assert LEAK_MARKER in raw  # the sample does carry secret values and defaults

    result = parse_mcp_server_json(raw, source=sample)

    assert LEAK_MARKER not in repr(result)
    assert "Bearer {" not in repr(result)


def test_it_leaves_owner_out_because_server_json_has_none() -> None:
    entity = _parse_one((SAMPLES / "server.json").read_bytes())

    assert "owner" not in entity.data


def test_it_takes_the_transport_from_packages_when_there_are_no_remotes() -> None:
    package = {"registryType": "pypi", "identifier": "weather-mcp", "transport": {"type": "stdio"}}

    entity = _parse_one(_server(packages=[package]))

    assert entity.data["transport"] == "stdio"
    assert "endpoint_url" not in entity.data
    assert "remotes" not in entity.data


def test_it_keeps_only_keys_the_file_gives() -> None:
    entity = _parse_one(json.dumps({"name": "io.github.alice/weather"}))

    assert entity.data == {
        "name": registry_name_to_catalog_name("io.github.alice/weather"),
        "registry_name": "io.github.alice/weather",
        "kind": "mcp_server",
    }


def test_it_warns_about_a_name_outside_the_namespace_form() -> None:
    entity = _parse_one(json.dumps({"name": "Remote Filesystem Server", "version_detail": {"version": "2.0.0"}}))

    assert entity.name.startswith("remote-filesystem-server-")
    assert "namespace/server" in entity.warnings[0]


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        (json.dumps({"description": "no name", "version": "1"}), "name", "is required"),
        (_server(packages="npm"), "packages", "must be a list of objects"),
        (
            _server(packages=[{"registryType": "npm", "transport": {"type": "carrier-pigeon"}}]),
            "packages[0].transport",
            "unknown transport",
        ),
        (_server(remotes=[{"type": "sse"}]), "remotes[0]", "needs a type and a url"),
        (
            _server(packages=[{"environmentVariables": [{"isSecret": True}]}]),
            "packages[0].environmentVariables[0]",
            "needs a name",
        ),
        (
            _server(_meta={"io.modelcontextprotocol.registry/publisher-provided": {"tools": [{"annotations": {}}]}}),
            "_meta.io.modelcontextprotocol.registry/publisher-provided.tools",
            "needs a name",
        ),
        (json.dumps(["not", "an", "object"]), "", "must be a JSON object"),
    ],
)
def test_it_reports_bad_server_json_fields(content: str, field: str, message: str) -> None:
    result = parse_mcp_server_json(content, source="bad.json")

    assert result.entities == []
    assert any(error.field == field and message in error.message for error in result.errors), result.errors


def test_it_reports_invalid_json_without_raising() -> None:
    result = parse_mcp_server_json(b"{not json", source="server.json")

    [error] = result.errors
    assert (error.source, error.index) == ("server.json", None)
    assert "invalid JSON" in error.message


def test_it_reports_duplicate_servers_in_one_answer_naming_both_indices() -> None:
    server = json.loads(_server())
    content = json.dumps({"servers": [{"server": server}, {"server": {"name": "io.github.bob/x"}}, {"server": server}]})

    result = parse_mcp_server_json(content, source="registry.json")

    assert len(result.entities) == 2
    [error] = result.errors
    assert error.index == 2
    assert "documents 0 and 2" in error.message


def test_it_reads_the_official_deprecated_status_of_a_registry_answer() -> None:
    meta = {"io.modelcontextprotocol.registry/official": {"status": "deprecated"}}
    content = json.dumps({"server": json.loads(_server()), "_meta": meta})

    entity = _parse_one(content)

    assert entity.data["lifecycle"] == "deprecated"


def test_it_keeps_script_in_a_description_as_plain_data() -> None:
    entity = _parse_one(_server(description="<script>alert('x')</script>", title="<b>W</b>"))

    assert entity.data["description"] == "<script>alert('x')</script>"
