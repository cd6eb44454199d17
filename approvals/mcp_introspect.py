"""Ask a live MCP server what tools it really offers, and compare that with what was declared.

Speaks MCP over Streamable HTTP: JSON-RPC 2.0 messages POSTed to one endpoint, answered either as
`application/json` or as a `text/event-stream` carrying the answer in a `message` event. All traffic
goes through the SSRF-safe `SafeHttpClient`, so transport failures surface as `portal.net.FetchError`s
(e.g. `FetchConnectionError` when the server is down); protocol failures as `McpProtocolError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from portal.net import FetchError, SafeHttpClient, SafeResponse, get_client

logger = logging.getLogger(__name__)

MCP_PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "agent-portal", "version": "0.1.0"}
MAX_TOOL_PAGES = 50
SESSION_HEADER = "Mcp-Session-Id"

# snake_case name used by the portal -> MCP annotation name, and the MCP default when absent.
HINTS: dict[str, tuple[str, bool]] = {
    "read_only": ("readOnlyHint", False),
    "destructive": ("destructiveHint", True),
    "idempotent": ("idempotentHint", False),
    "open_world": ("openWorldHint", True),
}


class McpProtocolError(Exception):
    """The server answered, but not as an MCP server should (JSON-RPC error, bad shape, bad status)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # the JSON-RPC error code, when the server sent one


class McpTool(TypedDict):
    name: str
    description: str
    read_only: bool | None
    destructive: bool | None
    idempotent: bool | None
    open_world: bool | None


@dataclass(frozen=True)
class McpIntrospection:
    server_name: str
    server_version: str
    protocol_version: str
    tools: list[McpTool] = field(default_factory=list)


class _McpSession:
    """One Streamable HTTP conversation: numbering requests and carrying the session headers."""

    def __init__(self, url: str, client: SafeHttpClient, timeout: float) -> None:
        self.url = url
        self.client = client
        self.timeout = timeout
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._next_id = 1

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if self.session_id is not None:
            headers[SESSION_HEADER] = self.session_id
        if self.protocol_version is not None:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        answered: Callable[[SafeResponse], None] | None = None,
    ) -> tuple[Any, SafeResponse]:
        request_id = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = dict(params)
        response = self.client.post(self.url, json=message, headers=self._headers(), timeout=self.timeout)
        if answered is not None:
            answered(response)
        answer = _read_answer(response, method=method, request_id=request_id)
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            code = error.get("code") if isinstance(error.get("code"), int) else None
            raise McpProtocolError(
                f"MCP server {self.url} refused {method}: {error.get('message', 'no message')} (code {code})",
                code=code,
            )
        if "result" not in answer:
            raise McpProtocolError(f"MCP server {self.url} answered {method} with neither result nor error")
        return answer["result"], response

    def notify(self, method: str) -> None:
        message = {"jsonrpc": "2.0", "method": method}
        response = self.client.post(self.url, json=message, headers=self._headers(), timeout=self.timeout)
        if not 200 <= response.status < 300:
            raise McpProtocolError(f"MCP server {self.url} answered {method} with HTTP {response.status}")

    def terminate(self) -> None:
        """Politely end the session (the spec says clients SHOULD); failures do not matter here."""
        if self.session_id is None:
            return
        try:
            self.client.request("DELETE", self.url, headers=self._headers(), timeout=self.timeout)
        except FetchError as error:
            logger.debug("could not terminate MCP session at %s: %s", self.url, error)


def introspect_mcp_server(
    url: str,
    *,
    client: SafeHttpClient | None = None,
    timeout: float = 10,
    initialize_answered: Callable[[SafeResponse], None] | None = None,
) -> McpIntrospection:
    """Initialize a session with the MCP server at `url` and list all its tools (following pages).

    `initialize_answered` gets the HTTP answer to `initialize` before it is judged, so a caller learns that the
    server answered (and with which status) even when the answer then turns out not to be MCP."""
    session = _McpSession(url, client or get_client(), timeout)
    result, response = session.call(
        "initialize",
        {"protocolVersion": MCP_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
        answered=initialize_answered,
    )
    if not isinstance(result, dict):
        raise McpProtocolError(f"MCP server {url} answered initialize with a non-object result")
    protocol_version = result.get("protocolVersion")
    server_info = result.get("serverInfo")
    if not isinstance(protocol_version, str) or not isinstance(server_info, dict):
        raise McpProtocolError(f"MCP server {url} answered initialize without protocolVersion or serverInfo")
    session.session_id = response.headers.get(SESSION_HEADER)
    session.protocol_version = protocol_version
    try:
        session.notify("notifications/initialized")
        tools = _list_all_tools(session)
    finally:
        session.terminate()
    return McpIntrospection(
        server_name=str(server_info.get("name", "")),
        server_version=str(server_info.get("version", "")),
        protocol_version=protocol_version,
        tools=tools,
    )


def _list_all_tools(session: _McpSession) -> list[McpTool]:
    tools: list[McpTool] = []
    cursor: str | None = None
    seen_cursors: set[str] = set()
    for _page in range(MAX_TOOL_PAGES):
        result, _response = session.call("tools/list", {"cursor": cursor} if cursor is not None else {})
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            raise McpProtocolError(f"MCP server {session.url} answered tools/list without a tools list")
        tools.extend(_parse_tool(raw, session.url) for raw in result["tools"])
        cursor = result.get("nextCursor")
        if cursor is None:
            return tools
        if not isinstance(cursor, str) or cursor in seen_cursors:  # a loop would never end
            raise McpProtocolError(f"MCP server {session.url} sent an invalid or repeated nextCursor {cursor!r}")
        seen_cursors.add(cursor)
    raise McpProtocolError(f"MCP server {session.url} has more than {MAX_TOOL_PAGES} pages of tools")


def _parse_tool(raw: Any, url: str) -> McpTool:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise McpProtocolError(f"MCP server {url} listed a tool without a name: {raw!r:.200}")
    annotations = raw.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}

    def hint(key: str) -> bool | None:
        value = annotations.get(HINTS[key][0])
        return value if isinstance(value, bool) else None  # anything but a real boolean is no hint

    description = raw.get("description")
    return McpTool(
        name=raw["name"],
        description=description if isinstance(description, str) else "",
        read_only=hint("read_only"),
        destructive=hint("destructive"),
        idempotent=hint("idempotent"),
        open_world=hint("open_world"),
    )


def _read_answer(response: SafeResponse, *, method: str, request_id: int) -> dict[str, Any]:
    """The JSON-RPC answer to `request_id`, from a JSON body or from an SSE stream."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == "text/event-stream":
        candidates = _sse_messages(response.text)
    elif content_type == "application/json":
        candidates = [_parse_json(response.content, response.url, method)]
    else:
        candidates = []
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("id") == request_id:
            if candidate.get("jsonrpc") != "2.0":
                raise McpProtocolError(f"MCP server {response.url} answered {method} without jsonrpc 2.0")
            return candidate
    # A JSON-RPC error about the request as a whole (id null) may come with a 4xx status.
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("id") is None and "error" in candidate:
            return candidate
    if not response.ok:
        raise McpProtocolError(f"MCP server {response.url} answered {method} with HTTP {response.status}")
    if not candidates:
        raise McpProtocolError(
            f"MCP server {response.url} answered {method} with content type {content_type or 'none'!r},"
            " expected application/json or text/event-stream"
        )
    raise McpProtocolError(f"MCP server {response.url} sent no answer to {method} (request id {request_id})")


def _parse_json(content: bytes, url: str, method: str) -> Any:
    try:
        return json.loads(content)
    except ValueError as error:
        raise McpProtocolError(f"MCP server {url} answered {method} with invalid JSON: {error}") from error


def _sse_messages(stream: str) -> list[Any]:
    """JSON payloads of the `message` events of an SSE stream; empty (priming) events are skipped."""
    messages: list[Any] = []
    event_type = "message"
    data_lines: list[str] = []
    for line in [*stream.splitlines(), ""]:
        if line == "":  # a blank line dispatches the event
            data = "\n".join(data_lines)
            if event_type == "message" and data.strip():
                try:
                    messages.append(json.loads(data))
                except ValueError as error:
                    raise McpProtocolError(f"MCP server sent an SSE event that is not JSON: {error}") from error
            event_type, data_lines = "message", []
            continue
        if line.startswith(":"):  # comment / keep-alive
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event_type = value
        elif name == "data":
            data_lines.append(value)
    return messages


def diff_capabilities(declared: Sequence[Mapping[str, Any]], actual: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every way the declared tools differ from the server's, one sentence each.

    Only hints the declaration states (not None) are compared. A hint the server leaves out counts
    as the MCP default (read_only False, destructive True, idempotent False, open_world True).
    """
    actual_by_name: dict[str, Mapping[str, Any]] = {}
    for tool in actual:
        actual_by_name.setdefault(str(tool.get("name")), tool)
    declared_names = {str(tool.get("name")) for tool in declared}
    differences: list[str] = []
    seen: set[str] = set()
    for declared_tool in declared:
        name = str(declared_tool.get("name"))
        if name in seen:
            continue
        seen.add(name)
        server_tool = actual_by_name.get(name)
        if server_tool is None:
            differences.append(f"{name}: declared but missing on the server")
            continue
        for hint_name, (_mcp_name, mcp_default) in HINTS.items():
            declared_value = declared_tool.get(hint_name)
            if declared_value is None:
                continue
            server_value = server_tool.get(hint_name)
            if server_value is None:
                if declared_value != mcp_default:
                    differences.append(
                        f"{name}: declared {hint_name}={declared_value}, server says {mcp_default}"
                        " (hint absent, MCP default)"
                    )
            elif declared_value != server_value:
                differences.append(f"{name}: declared {hint_name}={declared_value}, server says {server_value}")
    for name in actual_by_name:
        if name not in declared_names:
            differences.append(f"{name}: on the server but not declared")
    return differences
