"""MCP introspection against a real local MCP server (portal.testing.servers.McpTestServer)."""

from __future__ import annotations

import time
from typing import Any, Literal

import pytest

from approvals.mcp_introspect import (
    MCP_PROTOCOL_VERSION,
    McpIntrospection,
    McpProtocolError,
    diff_capabilities,
    introspect_mcp_server,
)
from portal.net import FetchConnectionError, FetchTimeoutError, SafeHttpClient, UnsafeUrlError
from portal.testing.servers import LocalHttpServer, McpTestServer, McpToolSpec, Reply

LOCAL_CLIENT = SafeHttpClient(allowlist=["127.0.0.1"])

GITHUB_TOOLS = [
    McpToolSpec("get_issue", "Read one issue", read_only=True, destructive=False, idempotent=True, open_world=True),
    McpToolSpec("list_issues", "List issues", read_only=True),
    McpToolSpec("create_issue", "Open an issue", read_only=False, destructive=False, idempotent=False),
    McpToolSpec("delete_issue", "Delete an issue", read_only=False, destructive=True, idempotent=True),
    McpToolSpec("search", "Search everything"),
]


@pytest.mark.parametrize("response_mode", ["json", "sse"])
def test_it_lists_every_tool_across_pages(response_mode: Literal["json", "sse"]) -> None:
    with McpTestServer(
        GITHUB_TOOLS,
        response_mode=response_mode,
        page_size=2,
        server_name="github-mcp",
        server_version="2.3.1",
    ) as server:
        introspection = introspect_mcp_server(server.url, client=LOCAL_CLIENT)

        assert server.methods_called() == [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/list",
            "tools/list",
        ]
        assert server.terminated_session_ids == [server.session_id]

    assert introspection == McpIntrospection(
        server_name="github-mcp",
        server_version="2.3.1",
        protocol_version=MCP_PROTOCOL_VERSION,
        tools=[
            {
                "name": "get_issue",
                "description": "Read one issue",
                "read_only": True,
                "destructive": False,
                "idempotent": True,
                "open_world": True,
            },
            {
                "name": "list_issues",
                "description": "List issues",
                "read_only": True,
                "destructive": None,
                "idempotent": None,
                "open_world": None,
            },
            {
                "name": "create_issue",
                "description": "Open an issue",
                "read_only": False,
                "destructive": False,
                "idempotent": False,
                "open_world": None,
            },
            {
                "name": "delete_issue",
                "description": "Delete an issue",
                "read_only": False,
                "destructive": True,
                "idempotent": True,
                "open_world": None,
            },
            {
                "name": "search",
                "description": "Search everything",
                "read_only": None,
                "destructive": None,
                "idempotent": None,
                "open_world": None,
            },
        ],
    )


def test_it_speaks_the_protocol_handshake_as_the_spec_asks() -> None:
    with McpTestServer(GITHUB_TOOLS[:1]) as server:
        introspect_mcp_server(server.url, client=LOCAL_CLIENT)
        requests = server.http.requests
        messages = server.messages
        session_id = server.session_id

    initialize = messages[0]
    assert initialize["params"] == {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "agent-portal", "version": "0.1.0"},
    }
    assert messages[1] == {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert messages[2]["params"] == {}
    assert [message.get("id") for message in messages] == [1, None, 2]
    assert requests[0].headers["Mcp-Session-Id"] is None
    for later in requests[1:]:
        assert later.headers["Mcp-Session-Id"] == session_id
        assert later.headers["MCP-Protocol-Version"] == "2025-11-25"
    for request in requests:
        assert request.headers["Accept"] == "application/json, text/event-stream"


def test_it_reads_sse_answers_that_start_with_a_priming_event() -> None:
    with McpTestServer(GITHUB_TOOLS, response_mode="sse", sse_priming_event=True, page_size=4) as server:
        introspection = introspect_mcp_server(server.url, client=LOCAL_CLIENT)

    assert [tool["name"] for tool in introspection.tools] == [tool.name for tool in GITHUB_TOOLS]


def test_it_treats_non_boolean_hints_as_absent() -> None:
    odd_tool = {
        "name": "odd",
        "annotations": {"readOnlyHint": "yes", "destructiveHint": 0},
        "inputSchema": {},
    }
    with McpTestServer([odd_tool]) as server:
        (tool,) = introspect_mcp_server(server.url, client=LOCAL_CLIENT).tools

    assert tool == {
        "name": "odd",
        "description": "",
        "read_only": None,
        "destructive": None,
        "idempotent": None,
        "open_world": None,
    }


def test_it_raises_a_protocol_error_for_a_json_rpc_error() -> None:
    failing = McpTestServer(GITHUB_TOOLS, rpc_errors={"tools/list": (-32603, "backend exploded")})
    with failing, pytest.raises(McpProtocolError, match="refused tools/list: backend exploded") as failure:
        introspect_mcp_server(failing.url, client=LOCAL_CLIENT)

    assert failure.value.code == -32603


@pytest.mark.parametrize(
    ("raw_replies", "http_errors", "message"),
    [
        ({"initialize": "this is not json"}, {}, "answered initialize with invalid JSON"),
        (
            {"initialize": '{"jsonrpc": "2.0", "id": 1, "result": {"serverInfo": {}}}'},
            {},
            "without protocolVersion or serverInfo",
        ),
        (
            {"tools/list": '{"jsonrpc": "2.0", "id": 2, "result": {"tools": "all of them"}}'},
            {},
            "without a tools list",
        ),
        (
            {"tools/list": '{"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"description": "nameless"}]}}'},
            {},
            "listed a tool without a name",
        ),
        (
            {"tools/list": '{"jsonrpc": "2.0", "id": 99, "result": {"tools": []}}'},
            {},
            "sent no answer to tools/list",
        ),
        ({}, {"initialize": 500}, "answered initialize with HTTP 500"),
        ({}, {"notifications/initialized": 400}, "answered notifications/initialized with HTTP 400"),
    ],
)
def test_it_raises_a_protocol_error_for_malformed_answers(
    raw_replies: dict[str, str], http_errors: dict[str, int], message: str
) -> None:
    broken = McpTestServer(GITHUB_TOOLS, raw_replies=raw_replies, http_errors=http_errors)
    with broken, pytest.raises(McpProtocolError, match=message):
        introspect_mcp_server(broken.url, client=LOCAL_CLIENT)


def test_it_hands_over_the_answer_to_initialize_before_judging_it() -> None:
    statuses: list[int] = []
    broken = McpTestServer(GITHUB_TOOLS, raw_replies={"initialize": "this is not json"})
    with broken, pytest.raises(McpProtocolError, match="invalid JSON"):
        introspect_mcp_server(
            broken.url, client=LOCAL_CLIENT, initialize_answered=lambda response: statuses.append(response.status)
        )

    assert statuses == [200]


def test_it_refuses_an_answer_that_is_neither_json_nor_sse() -> None:
    login_page = Reply(body="<html>login</html>", headers={"Content-Type": "text/html"})
    with (
        LocalHttpServer({"/mcp": login_page}) as html_site,
        pytest.raises(McpProtocolError, match="content type 'text/html'"),
    ):
        introspect_mcp_server(html_site.url("/mcp"), client=LOCAL_CLIENT)


def test_it_reports_a_server_that_is_down_as_a_connection_error() -> None:
    gone = McpTestServer(GITHUB_TOOLS)
    with gone:
        url = gone.url

    with pytest.raises(FetchConnectionError):
        introspect_mcp_server(url, client=LOCAL_CLIENT)


def test_it_gives_up_on_a_slow_server() -> None:
    with McpTestServer(GITHUB_TOOLS, delay=5) as server, pytest.raises(FetchTimeoutError):
        introspect_mcp_server(server.url, client=LOCAL_CLIENT, timeout=0.5)


def test_it_goes_through_the_ssrf_policy() -> None:
    with McpTestServer(GITHUB_TOOLS) as server:
        with pytest.raises(UnsafeUrlError, match="loopback"):
            introspect_mcp_server(server.url, client=SafeHttpClient(allowlist=[]))
        assert server.http.requests == []


# --- diff_capabilities -------------------------------------------------------------------------------


def _tool(name: str, **hints: bool | None) -> dict[str, Any]:
    return {"name": name, **hints}


def test_it_finds_no_difference_when_declaration_and_server_agree() -> None:
    declared = [_tool("get_issue", read_only=True, destructive=False)]
    actual = [_tool("get_issue", read_only=True, destructive=False, idempotent=True, open_world=None)]

    assert diff_capabilities(declared, actual) == []


def test_it_lists_every_difference_in_words() -> None:
    declared = [
        _tool("get_issue", read_only=True),
        _tool("delete_issue", read_only=True, destructive=False, idempotent=None),
        _tool("archive_repo", read_only=False),
        _tool("list_issues", read_only=True, open_world=False),
    ]
    actual = [
        _tool("get_issue", read_only=True, destructive=False, idempotent=True, open_world=True),
        _tool("delete_issue", read_only=False, destructive=True, idempotent=True, open_world=None),
        _tool("list_issues", read_only=None, destructive=None, idempotent=None, open_world=None),
        _tool("drop_database", read_only=False, destructive=True, idempotent=None, open_world=None),
    ]

    assert diff_capabilities(declared, actual) == [
        "delete_issue: declared read_only=True, server says False",
        "delete_issue: declared destructive=False, server says True",
        "archive_repo: declared but missing on the server",
        "list_issues: declared read_only=True, server says False (hint absent, MCP default)",
        "list_issues: declared open_world=False, server says True (hint absent, MCP default)",
        "drop_database: on the server but not declared",
    ]


def test_it_accepts_an_absent_hint_that_matches_the_mcp_default() -> None:
    declared = [_tool("search", read_only=False, destructive=True, idempotent=False, open_world=True)]
    actual = [_tool("search", read_only=None, destructive=None, idempotent=None, open_world=None)]

    assert diff_capabilities(declared, actual) == []


def test_it_compares_introspected_tools_directly() -> None:
    with McpTestServer(GITHUB_TOOLS) as server:
        actual = introspect_mcp_server(server.url, client=LOCAL_CLIENT).tools
    declared: list[dict[str, Any]] = [{"name": tool.name, "read_only": True} for tool in GITHUB_TOOLS]

    assert diff_capabilities(declared, [dict(tool) for tool in actual]) == [
        "create_issue: declared read_only=True, server says False",
        "delete_issue: declared read_only=True, server says False",
        "search: declared read_only=True, server says False (hint absent, MCP default)",
    ]


def test_the_test_server_answers_at_once_on_a_kept_alive_connection() -> None:
    # Two writes per answer with Nagle's algorithm on made every answer after the first wait for the client's delayed
    # ACK: 40 ms each (bench.approvals' checks measured that stall, not the portal). Twenty introspections over one
    # session took at least 1.6 s; without the stall they take about 50 ms.
    with McpTestServer([McpToolSpec(name="read_status", read_only=True)]) as server, LOCAL_CLIENT.session() as http:
        started = time.perf_counter()
        for _ in range(20):
            introspect_mcp_server(server.url, client=http)
        took = time.perf_counter() - started
    assert took < 0.8, f"{took:.2f} s for 20 introspections over one connection"
