"""The portal as an MCP server: Streamable HTTP at /mcp/, on the official SDK, inside the Django (WSGI) app.

How it is served: a Django view authenticates the API token, then hands the HTTP request, as an ASGI scope and its
body, to the SDK's own Streamable HTTP handler (`StreamableHTTPSessionManager`, stateless, JSON responses) in an
event loop of its own (asgiref's `async_to_sync`), and returns what it answered. The SDK does all of the protocol
(both the initialize-handshake versions and the 2026-07-28 per-request envelope); the view adds what the portal owns:
tokens, request ids, logs and metrics through Django's middleware. Tool handlers are async in the SDK; they run the
tools (plain Django code, mcp_tools) back on the request's own thread (`sync_to_async`, thread-sensitive), so the ORM
uses the request's connection as any view does.

Stateless and JSON only: every POST stands alone (no session to keep across gunicorn workers), and a GET stream is
refused with 405, which the protocol allows.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import MutableMapping
from typing import Any

import anyio
import mcp_types as types
from asgiref.sync import async_to_sync, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from agents_api import mcp_tools
from portal.api.errors import error_body
from portal.context import actor_var
from portal.tokens import TokenError, token_actor, token_authenticate

RESOURCE_NOT_FOUND = -32002
INSTRUCTIONS = (
    "Agent Portal: the catalog of AI agents and the tools they may call, with risk tiers and approvals. Search the "
    "catalog, describe an agent or tool, ask which tools an agent may use, request access (it files a request for "
    "people to approve) and follow the request. Before each tool call, POST /api/v1/grants/check/ answers whether "
    "the agent may call it now."
)
RESOURCE_URI = re.compile(r"portal://(?P<kind>agent|tool)s/(?P<name>[^/]+)")
RESOURCE_TEMPLATES = {
    "agent": types.ResourceTemplate(
        name="agent",
        title="Agent",
        uri_template="portal://agents/{name}",
        description="An agent's catalog entry: owner, risk with its reasons, grants.",
        mime_type="application/json",
    ),
    "tool": types.ResourceTemplate(
        name="tool",
        title="Tool",
        uri_template="portal://tools/{name}",
        description="A tool's catalog entry: owner, capabilities, risk with its reasons, grants.",
        mime_type="application/json",
    ),
}

_caller: contextvars.ContextVar[mcp_tools.Caller] = contextvars.ContextVar("mcp_caller")


def _as_mcp_tool(tool: mcp_tools.PortalTool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.input_schema,
        annotations=types.ToolAnnotations(
            title=tool.title,
            read_only_hint=tool.read_only,
            destructive_hint=False,
            idempotent_hint=tool.read_only,
            open_world_hint=False,
        ),
    )


async def _list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[_as_mcp_tool(tool) for tool in mcp_tools.TOOLS.values()])


async def _call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    if params.name not in mcp_tools.TOOLS:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool {params.name!r}; tools/list names the portal's tools.")
    outcome = await sync_to_async(mcp_tools.tool_call)(
        caller=_caller.get(), name=params.name, arguments=dict(params.arguments or {})
    )
    text = outcome.result["error"]["message"] if outcome.is_error else json.dumps(outcome.result)
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content=outcome.result, is_error=outcome.is_error
    )


async def _list_resource_templates(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    return types.ListResourceTemplatesResult(resource_templates=list(RESOURCE_TEMPLATES.values()))


async def _read_resource(
    ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    uri = str(params.uri)
    match = RESOURCE_URI.fullmatch(uri)
    if match is None:
        raise MCPError(
            RESOURCE_NOT_FOUND, f"Unknown resource {uri!r}: use portal://agents/NAME or portal://tools/NAME."
        )
    outcome = await sync_to_async(mcp_tools.tool_call)(
        caller=_caller.get(), name="describe_entity", arguments={"name": match["name"], "kind": match["kind"]}
    )
    if outcome.is_error:
        raise MCPError(RESOURCE_NOT_FOUND, outcome.result["error"]["message"])
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=json.dumps(outcome.result))]
    )


server: Server[Any] = Server(
    "agent-portal",
    version="1.0.0",
    title="Agent Portal",
    instructions=INSTRUCTIONS,
    on_list_tools=_list_tools,
    on_call_tool=_call_tool,
    on_list_resource_templates=_list_resource_templates,
    on_read_resource=_read_resource,
)


def _asgi_scope(request: HttpRequest) -> dict[str, Any]:
    host, _, port = request.get_host().partition(":")  # get_host() enforces ALLOWED_HOSTS
    headers = [(key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in request.headers.items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "root_path": "",
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
        "server": (host, int(port or (443 if request.is_secure() else 80))),
    }


async def _serve(scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request through the SDK's Streamable HTTP handler; its whole answer (JSON mode) as status, headers, body."""
    manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)
    answered = anyio.Event()
    delivered = False
    status, headers, chunks = 500, [], []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return status, headers, b"".join(chunks)


def _unauthorized(message: str) -> HttpResponse:
    response = JsonResponse(error_body(401, "not_authenticated", message), status=401)
    response["WWW-Authenticate"] = 'Bearer realm="mcp"'
    return response


@csrf_exempt  # tokens only, never cookies: nothing for a cross-site form to ride on
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return _unauthorized("An API token is required: Authorization: Bearer ap_...")
    try:
        token = token_authenticate(raw)
    except TokenError as exc:
        return _unauthorized(str(exc))
    actor_var.set(token_actor(token))
    if request.method != "POST":
        # Stateless: no server-initiated stream (GET) and no session to end (DELETE).
        return HttpResponse(status=405, headers={"Allow": "POST"})
    caller = _caller.set(mcp_tools.Caller(user=token.user, token=token))
    try:
        status, headers, body = async_to_sync(_serve)(_asgi_scope(request), request.body)
    finally:
        _caller.reset(caller)  # gunicorn's threads serve one request after another
    response = HttpResponse(body, status=status)
    for key, value in headers:
        if key.lower() != b"content-length":
            response[key.decode("latin-1")] = value.decode("latin-1")
    return response
