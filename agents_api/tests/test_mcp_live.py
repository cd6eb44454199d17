"""The portal's MCP server, live: real gunicorn workers on loopback, the official SDK's Streamable HTTP client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import requests
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from agents_api.testing import PortalServer
from approvals.models import ApprovalRequest
from catalog.models import ToolGrant
from portal.models import AuditEvent
from portal.testing.worker import database_url_for_current_connection
from portal.tokens import token_issue
from scaffolder.registering import templates_register_builtin

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def portal(transactional_db: None, tmp_path: Path) -> Iterator[PortalServer]:
    with PortalServer(database_url=database_url_for_current_connection(), var_dir=tmp_path / "var") as server:
        yield server


@pytest.fixture
def tokens(world: dict[str, Any], make_user: Callable[..., Any]) -> dict[str, str]:
    owner = world["owner"]

    def issue(user: Any, *scopes: str) -> str:
        name = f"agent {'+'.join(scopes)}"
        return token_issue(issued_by=user, name=name, scopes=list(scopes), expires_in_days=7).secret

    return {
        "agent": issue(owner, "read", "write"),
        "reader": issue(owner, "read"),
        "writer": issue(owner, "write"),
        "stranger": issue(make_user("stranger"), "read", "write"),
    }


def run(url: str, token: str, steps: Callable[[Client], Any], mode: str = "auto") -> Any:
    async def main() -> Any:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http), mode=mode) as client,
        ):
            return await steps(client)

    return asyncio.run(main())


def structured(result: Any) -> dict[str, Any]:
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def test_an_agent_searches_asks_requests_access_and_follows_its_request(
    portal: PortalServer, world: dict[str, Any], make_grant: Callable[..., Any], tokens: dict[str, str]
) -> None:
    make_grant(capabilities=["get_file"], environment="staging")

    async def journey(client: Client) -> dict[str, Any]:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        found = structured(await client.call_tool("search_catalog", {"query": "pull requets"}))  # typo tolerated
        tools_only = structured(await client.call_tool("search_catalog", {"query": "github", "kind": "tool"}))
        described = structured(await client.call_tool("describe_entity", {"name": "github-mcp"}))
        mine = structured(await client.call_tool("agent_tools", {"agent": "pr-reviewer"}))
        asked = structured(
            await client.call_tool(
                "request_access",
                {
                    "agent": "pr-reviewer",
                    "tool": "github-mcp",
                    "capabilities": ["get_file", "list_issues"],
                    "justification": "Reads the files a pull request touches.",
                },
            )
        )
        status = structured(await client.call_tool("request_status", {"request_id": asked["id"]}))
        resource = await client.read_resource("portal://agents/pr-reviewer")
        return {"tools": tools, "found": found, "tools_only": tools_only, "described": described, "mine": mine, "asked": asked,
                "status": status, "resource": resource}  # fmt: skip

    seen = run(portal.url("/mcp/"), tokens["agent"], journey)

    tools = seen["tools"]
    assert set(tools) == {"search_catalog", "describe_entity", "agent_tools", "request_access", "request_status",
                          "golden_path_preview"}  # fmt: skip
    assert tools["search_catalog"].annotations.read_only_hint is True
    assert tools["request_access"].annotations.read_only_hint is False
    assert tools["request_access"].annotations.destructive_hint is False
    assert tools["request_access"].input_schema["required"] == ["agent", "tool", "justification"]

    # The catalog's one search engine forgives the typo on both databases, as on the catalog page and the API.
    assert "pr-reviewer" in [hit["name"] for hit in seen["found"]["results"]]
    assert [(hit["kind"], hit["name"]) for hit in seen["tools_only"]["results"]] == [("tool", "github-mcp")]
    assert (seen["described"]["entity"], seen["described"]["kind"]) == ("tool", "mcp_server")
    assert seen["described"]["owner"] == "platform"
    assert seen["described"]["risk"]["tier"] == world["tool"].risk_tier
    assert seen["described"]["risk"]["explanation"]
    assert [grant["environment"] for grant in seen["mine"]["tools"]] == ["staging"]
    assert seen["mine"]["tools"][0]["capabilities"] == ["get_file"]

    asked = seen["asked"]
    assert (asked["kind"], asked["agent"], asked["tool"], asked["environment"]) == (
        "tool_grant", "pr-reviewer", "github-mcp", "production")  # fmt: skip
    assert asked["state"] in {"checking", "in_review", "approved"}
    assert seen["status"]["id"] == asked["id"]
    assert seen["status"]["checks"]
    approval = ApprovalRequest.objects.get(pk=asked["id"])
    assert approval.requester == world["owner"]
    assert approval.grant.capability_names == ["get_file", "list_issues"]
    assert approval.state != "approved" or approval.tier == "low"  # a request, never an approval by the agent
    assert json.loads(seen["resource"].contents[0].text)["name"] == "pr-reviewer"

    calls = AuditEvent.objects.filter(action="mcp.tool.called").order_by("sequence")
    assert [event.object_id for event in calls] == ["search_catalog", "search_catalog", "describe_entity", "agent_tools",
                                                    "request_access", "request_status", "describe_entity"]  # fmt: skip
    assert {event.actor_kind for event in calls} == {"token"}
    assert all("(token agent read+write)" in event.actor_label for event in calls)
    assert AuditEvent.objects.filter(action="approvals.request.submitted", actor_kind="token").exists()


def test_refused_scopes_unknown_entities_and_bad_arguments_are_tool_errors(
    portal: PortalServer, world: dict[str, Any], tokens: dict[str, str]
) -> None:
    async def reader(client: Client) -> list[Any]:
        return [
            await client.call_tool(
                "request_access", {"agent": "pr-reviewer", "tool": "github-mcp", "justification": "x"}
            ),
            await client.call_tool("describe_entity", {"name": "no-such-thing"}),
            await client.call_tool("agent_tools", {"agent": "ghost"}),
            await client.call_tool("request_status", {"request_id": 999999}),
            await client.call_tool("search_catalog", {"query": "x", "limit": 500, "colour": "red"}),
            await client.call_tool("golden_path_preview", {"template": "nope"}),
        ]

    refused, unknown, ghost, missing, bad, template = run(portal.url("/mcp/"), tokens["reader"], reader)
    assert all(result.is_error for result in (refused, unknown, ghost, missing, bad, template))
    assert refused.content[0].text == "This token lacks the 'write' scope request_access needs (it has: read)."
    assert unknown.content[0].text == (
        "The catalog has no agent or tool called 'no-such-thing'; search_catalog finds names."
    )
    assert "no agent called 'ghost'" in ghost.content[0].text
    assert ghost.structured_content["error"]["fields"] == {"agent": ["no agent 'ghost'"]}
    assert missing.content[0].text == "There is no approval request #999999."
    assert set(bad.structured_content["error"]["fields"]) == {"limit", "arguments"}
    assert template.content[0].text == "There is no golden path 'nope'."
    assert not ToolGrant.objects.exists()

    async def writer(client: Client) -> Any:
        return await client.call_tool("search_catalog", {"query": "github"})

    assert run(portal.url("/mcp/"), tokens["writer"], writer).is_error

    async def no_resource(client: Client) -> Any:
        with pytest.raises(MCPError) as error:
            await client.read_resource("portal://tools/ghost")
        return error.value

    assert "no tool called 'ghost'" in str(run(portal.url("/mcp/"), tokens["agent"], no_resource))

    async def stranger(client: Client) -> Any:
        arguments = {"agent": "pr-reviewer", "tool": "github-mcp", "justification": "Mine now."}
        return await client.call_tool("request_access", arguments)

    refused_stranger = run(portal.url("/mcp/"), tokens["stranger"], stranger)
    assert refused_stranger.is_error
    assert "Only maintainers of team 'platform'" in refused_stranger.content[0].text
    assert not ToolGrant.objects.exists()

    refused_events = AuditEvent.objects.filter(action="mcp.tool.called", changes__outcome="refused")
    assert refused_events.count() == 9


def test_a_golden_path_preview_writes_nothing_and_the_handshake_era_works_too(
    portal: PortalServer, world: dict[str, Any], tokens: dict[str, str]
) -> None:
    from scaffolder.models import ScaffoldRun

    templates_register_builtin()
    values = {"name": "ticket-bot", "description": "Files tickets.", "owner": "platform", "agent_type": "business"}

    async def preview(client: Client) -> Any:
        return await client.call_tool("golden_path_preview", {"template": "python-agent", "values": values})

    result = run(portal.url("/mcp/"), tokens["reader"], preview, mode="legacy")
    assert not result.is_error, result.content[0].text
    files = {entry["path"]: entry for entry in result.structured_content["files"]}
    assert result.structured_content["written"] is False
    assert any(path.endswith("catalog-info.yaml") for path in files)
    assert not ScaffoldRun.objects.exists()

    async def bad_values(client: Client) -> Any:
        return await client.call_tool("golden_path_preview", {"template": "python-agent", "values": {"name": "X"}})

    refused = run(portal.url("/mcp/"), tokens["reader"], bad_values)
    assert refused.is_error
    assert "values.name" in refused.structured_content["error"]["fields"]


def test_it_refuses_requests_without_a_valid_token(portal: PortalServer, world: dict[str, Any]) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = requests.post(portal.url("/mcp/"), json=body, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="mcp"'
    response = requests.post(portal.url("/mcp/"), json=body, headers={"Authorization": "Bearer ap_nope"}, timeout=10)
    assert response.status_code == 401
    assert "Malformed token" in response.json()["error"]["message"]
