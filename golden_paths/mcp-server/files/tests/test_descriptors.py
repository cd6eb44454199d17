"""catalog-info.yaml and server.json must describe the server that actually runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from mcp import Client

ROOT = Path(__file__).resolve().parent.parent
SERVER_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
# Constraints copied from the MCP registry's server.json schema (2025-12-11).
REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")
TRANSPORT_TYPES = {"stdio", "streamable-http", "sse"}
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


def load_catalog_entity() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "catalog-info.yaml").read_text(encoding="utf-8"))


def load_server_json() -> dict[str, Any]:
    return json.loads((ROOT / "server.json").read_text(encoding="utf-8"))


def hints_by_name(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {tool["name"]: {key: tool["annotations"][key] for key in HINTS} for tool in tools}


async def live_tools(client: Client) -> dict[str, dict[str, Any]]:
    listed = await client.list_tools()
    return {
        tool.name: tool.annotations.model_dump(by_alias=True, exclude_none=True)
        for tool in listed.tools
    }


def test_the_catalog_entity_is_an_mcp_server_api() -> None:
    entity = load_catalog_entity()
    assert entity["kind"] == "API"
    assert entity["spec"]["type"] == "mcp-server"
    assert entity["spec"]["owner"]
    assert isinstance(entity["spec"]["definition"], str)


def test_the_catalog_capabilities_match_the_live_tools(with_client: Any) -> None:
    annotations = load_catalog_entity()["metadata"]["annotations"]
    declared = json.loads(annotations["agentportal.io/capabilities"])
    assert hints_by_name(declared) == with_client(live_tools)


def test_server_json_lists_the_live_tools(with_client: Any) -> None:
    meta = load_server_json()["_meta"]["io.modelcontextprotocol.registry/publisher-provided"]
    assert hints_by_name(meta["tools"]) == with_client(live_tools)


def test_server_json_follows_the_registry_schema() -> None:
    server = load_server_json()
    entity = load_catalog_entity()
    assert server["$schema"] == SERVER_SCHEMA_URL
    assert REGISTRY_NAME.match(server["name"])
    assert 3 <= len(server["name"]) <= 200
    assert server["name"] == entity["metadata"]["annotations"]["agentportal.io/registry-name"]
    assert 1 <= len(server["description"]) <= 100
    assert server["version"]
    for package in server.get("packages", []):
        assert {"registryType", "identifier", "transport"} <= set(package)
        assert package["transport"]["type"] in TRANSPORT_TYPES
    for remote in server.get("remotes", []):
        assert remote["type"] in TRANSPORT_TYPES - {"stdio"}
        assert re.match(r"^https?://\S+$", remote["url"])
    assert server.get("packages") or server.get("remotes")
