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


def load_catalog_entity() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "catalog-info.yaml").read_text(encoding="utf-8"))


def test_the_catalog_entity_is_an_mcp_server_api() -> None:
    entity = load_catalog_entity()
    assert entity["kind"] == "API"
    assert entity["spec"]["type"] == "mcp-server"
    assert entity["spec"]["owner"]
    assert isinstance(entity["spec"]["definition"], str)


def test_the_catalog_definition_matches_the_live_tools(with_client: Any) -> None:
    async def live_tools(client: Client) -> dict[str, dict[str, Any]]:
        listed = await client.list_tools()
        return {
            tool.name: tool.annotations.model_dump(by_alias=True, exclude_none=True)
            for tool in listed.tools
        }

    definition = yaml.safe_load(load_catalog_entity()["spec"]["definition"])
    declared = {tool["name"]: tool["annotations"] for tool in definition["tools"]}
    assert declared == with_client(live_tools)


def test_server_json_follows_the_registry_schema() -> None:
    server = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
    entity = load_catalog_entity()
    assert server["$schema"] == SERVER_SCHEMA_URL
    assert REGISTRY_NAME.match(server["name"])
    assert 3 <= len(server["name"]) <= 200
    assert server["name"] == entity["metadata"]["annotations"]["agentportal.io/mcp-registry-name"]
    assert 1 <= len(server["description"]) <= 100
    assert server["version"]
    for package in server["packages"]:
        assert {"registryType", "identifier", "transport"} <= set(package)
        assert package["transport"]["type"] in TRANSPORT_TYPES
        if package["transport"]["type"] != "stdio":
            assert re.match(r"^https?://\S+$", package["transport"]["url"])
