"""Real local servers for tests: an HTTP server with scripted routes and a minimal MCP server.

Both listen on a free port of 127.0.0.1 in background threads and are context managers, so a
pytest fixture is just ``with LocalHttpServer(...) as server: yield server``. Standard library only.

    routes = {"/hello": Reply(body="hi"), "POST /echo": lambda request: Reply(body=request.body)}
    with LocalHttpServer(routes) as server:
        requests.get(server.url("/hello"))
        assert server.requests[0].path == "/hello"
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

__all__ = [
    "LocalHttpServer",
    "McpTestServer",
    "McpToolSpec",
    "RecordedRequest",
    "Reply",
    "ReplyFactory",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it. `headers` is case-insensitive (`headers["Authorization"]`)."""

    method: str
    path: str  # path and query exactly as sent
    headers: Message
    body: bytes
    client_port: int = 0  # tells connections apart: requests on one kept-alive connection share it

    @property
    def route_path(self) -> str:
        return urlsplit(self.path).path

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """What a route answers. A dict or list body is sent as JSON.

    `delay` waits before answering (slow server); `chunked` sends the body without Content-Length
    in `chunk_size` pieces, `chunk_delay` apart (trickling server).
    """

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunked: bool = False
    chunk_size: int = 64 * 1024
    chunk_delay: float = 0.0

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status=status, headers={"Location": location})

    def body_bytes(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()

    def content_type(self) -> str | None:
        if any(name.lower() == "content-type" for name in self.headers):
            return None  # the route chose one
        if isinstance(self.body, dict | list):
            return "application/json"
        if isinstance(self.body, str):
            return "text/plain; charset=utf-8"
        return None


ReplyFactory = Callable[[RecordedRequest], Reply]


class _QuietThreadingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping on a delay must not block shutdown
    owner: LocalHttpServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts, size caps, refused TLS) are expected in tests: no tracebacks.
        pass


class _QuietThreadingHTTPServerV6(_QuietThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The status line and headers, then the body, go out as two writes: with Nagle's algorithm on, the body waited
    # for the client's delayed ACK of the headers, 40 ms per answer on a kept-alive connection (an MCP introspection
    # over one session took 88 ms instead of 3). Servers the portal talks to in production set TCP_NODELAY.
    disable_nagle_algorithm = True
    server: _QuietThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            pieces = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(pieces)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        owner = self.server.owner
        recorded = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=self.headers,
            body=self._read_body(),
            client_port=self.client_address[1],
        )
        owner._record(recorded)
        reply = owner._reply_for(recorded)
        if reply.delay and owner._stopping.wait(reply.delay):
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        payload = b"" if self.command == "HEAD" else reply.body_bytes()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if content_type := reply.content_type():
            self.send_header("Content-Type", content_type)
        if not reply.chunked:
            self.send_header("Content-Length", str(len(reply.body_bytes())))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        stopping = self.server.owner._stopping
        for start in range(0, len(payload), reply.chunk_size):
            piece = payload[start : start + reply.chunk_size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            if reply.chunk_delay and stopping.wait(reply.chunk_delay):
                self.close_connection = True
                return
        self.wfile.write(b"0\r\n\r\n")


class LocalHttpServer:
    """A scripted HTTP server. Routes map "/path" (any method) or "METHOD /path" to a `Reply` or
    to a function of the `RecordedRequest` returning one; the query string is ignored for matching.
    Unknown routes answer 404. Every request is recorded in `requests`.
    """

    def __init__(
        self,
        routes: Mapping[str, Reply | ReplyFactory] | None = None,
        *,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.ssl_context = ssl_context
        self._routes: dict[str, Reply | ReplyFactory] = dict(routes or {})
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _QuietThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Self:
        server_class = _QuietThreadingHTTPServerV6 if ":" in self.host else _QuietThreadingHTTPServer
        server = server_class((self.host, 0), _Handler)
        server.owner = self
        if self.ssl_context is not None:
            # Handshake in the handler thread, so a client refusing the certificate cannot stall accept().
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"test-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    # --- routes and records --------------------------------------------------------------------------

    def route(self, key: str, reply: Reply | ReplyFactory) -> None:
        """Add or replace a route while the server runs."""
        with self._lock:
            self._routes[key] = reply

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.route_path == path]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            route = self._routes.get(f"{request.method} {request.route_path}") or self._routes.get(request.route_path)
        if route is None:
            return Reply(status=404, body=f"no route for {request.method} {request.route_path}")
        return route(request) if callable(route) else route


# --- MCP -------------------------------------------------------------------------------------------------

MCP_PROTOCOL_VERSION = "2025-11-25"


@dataclass(frozen=True)
class McpToolSpec:
    """A tool the test MCP server lists. Hints left as None are omitted from `annotations`."""

    name: str
    description: str = ""
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None
    open_world: bool | None = None
    title: str | None = None
    input_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def as_mcp(self) -> dict[str, Any]:
        hints = {
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }
        tool: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": dict(self.input_schema),
        }
        if self.title is not None:
            tool["title"] = self.title
        annotations = {key: value for key, value in hints.items() if value is not None}
        if annotations:
            tool["annotations"] = annotations
        return tool


class McpTestServer:
    """A minimal MCP server over Streamable HTTP (JSON-RPC 2.0 over POST) at `url`.

    Supports `initialize` (hands out an `Mcp-Session-Id`), notifications (202), `ping` and
    paginated `tools/list`. Answers as `application/json` or as `text/event-stream` (one `message`
    event, optionally preceded by an empty priming event) per `response_mode`.

    Failure knobs: `delay` (seconds before every answer), `rpc_errors` (method -> (code, message)
    JSON-RPC error), `http_errors` (method -> HTTP status), `raw_replies` (method -> body sent
    verbatim, for malformed answers). Tools may be `McpToolSpec`s or raw MCP tool dicts.
    """

    def __init__(
        self,
        tools: Iterable[McpToolSpec | Mapping[str, Any]] = (),
        *,
        response_mode: Literal["json", "sse"] = "json",
        page_size: int | None = None,
        server_name: str = "test-mcp-server",
        server_version: str = "1.0.0",
        protocol_version: str = MCP_PROTOCOL_VERSION,
        delay: float = 0.0,
        rpc_errors: Mapping[str, tuple[int, str]] | None = None,
        http_errors: Mapping[str, int] | None = None,
        raw_replies: Mapping[str, bytes | str] | None = None,
        sse_priming_event: bool = False,
        require_session: bool = True,
        require_accept: bool = True,
        path: str = "/mcp",
        host: str = "127.0.0.1",
    ) -> None:
        self.tools = [tool.as_mcp() if isinstance(tool, McpToolSpec) else dict(tool) for tool in tools]
        self.response_mode = response_mode
        self.page_size = page_size
        self.server_name = server_name
        self.server_version = server_version
        self.protocol_version = protocol_version
        self.delay = delay
        self.rpc_errors = dict(rpc_errors or {})
        self.http_errors = dict(http_errors or {})
        self.raw_replies = dict(raw_replies or {})
        self.sse_priming_event = sse_priming_event
        self.require_session = require_session
        self.require_accept = require_accept
        self.path = path
        self.session_ids: list[str] = []
        self.terminated_session_ids: list[str] = []
        self.http = LocalHttpServer({path: self._answer}, host=host)

    def __enter__(self) -> Self:
        self.http.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.http.stop()

    @property
    def url(self) -> str:
        return self.http.url(self.path)

    @property
    def session_id(self) -> str | None:
        return self.session_ids[-1] if self.session_ids else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every JSON-RPC message received, in order."""
        messages = []
        for request in self.http.requests:
            if request.method == "POST":
                try:
                    messages.append(request.json())
                except ValueError:
                    continue
        return messages

    def methods_called(self) -> list[str]:
        return [str(message.get("method")) for message in self.messages if isinstance(message, dict)]

    # --- protocol ------------------------------------------------------------------------------------

    def _answer(self, request: RecordedRequest) -> Reply:
        if request.method == "DELETE":
            session = request.header("Mcp-Session-Id")
            if session not in self.session_ids:
                return self._plain(404, "unknown session")
            self.terminated_session_ids.append(session)
            return self._plain(200, "")
        if request.method != "POST":
            return Reply(status=405, headers={"Allow": "POST, DELETE"}, delay=self.delay)
        accept = (request.header("Accept") or "").lower()
        if self.require_accept and not ("application/json" in accept and "text/event-stream" in accept):
            return self._plain(406, "Accept must list application/json and text/event-stream")
        try:
            message = request.json()
        except ValueError:
            return self._rpc(None, error=(-32700, "Parse error"), status=400)
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return self._rpc(None, error=(-32600, "Invalid Request"), status=400)
        method = message.get("method")
        if method in self.http_errors:
            return self._plain(self.http_errors[method], f"simulated HTTP error for {method}")
        if "id" not in message:  # a notification, or a response to us: accepted, nothing to say
            return Reply(status=202, delay=self.delay)
        request_id = message["id"]
        if method != "initialize" and self.require_session:
            session = request.header("Mcp-Session-Id")
            if session is None:
                return self._rpc(request_id, error=(-32600, "Mcp-Session-Id header required"), status=400)
            if session not in self.session_ids or session in self.terminated_session_ids:
                return self._plain(404, "unknown session")
        if method in self.raw_replies:
            return Reply(
                body=self.raw_replies[method],
                headers={"Content-Type": self._content_type()},
                delay=self.delay,
            )
        if method in self.rpc_errors:
            return self._rpc(request_id, error=self.rpc_errors[method])
        if method == "initialize":
            session = uuid.uuid4().hex
            self.session_ids.append(session)
            result = {
                "protocolVersion": self.protocol_version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": self.server_name, "version": self.server_version},
            }
            return self._rpc(request_id, result=result, headers={"Mcp-Session-Id": session})
        if method == "ping":
            return self._rpc(request_id, result={})
        if method == "tools/list":
            return self._tools_page(request_id, message.get("params") or {})
        return self._rpc(request_id, error=(-32601, f"Method not found: {method}"))

    def _tools_page(self, request_id: Any, params: Mapping[str, Any]) -> Reply:
        cursor = params.get("cursor")
        start = 0
        if cursor is not None:
            if not (isinstance(cursor, str) and cursor.startswith("offset-") and cursor[7:].isdigit()):
                return self._rpc(request_id, error=(-32602, f"Invalid cursor: {cursor!r}"))
            start = int(cursor[7:])
        end = len(self.tools) if self.page_size is None else start + self.page_size
        result: dict[str, Any] = {"tools": self.tools[start:end]}
        if end < len(self.tools):
            result["nextCursor"] = f"offset-{end}"
        return self._rpc(request_id, result=result)

    def _content_type(self) -> str:
        return "text/event-stream" if self.response_mode == "sse" else "application/json"

    def _plain(self, status: int, text: str) -> Reply:
        return Reply(status=status, body=text, delay=self.delay)

    def _rpc(
        self,
        request_id: Any,
        *,
        result: Any = None,
        error: tuple[int, str] | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if error is not None:
            message["error"] = {"code": error[0], "message": error[1]}
        else:
            message["result"] = result
        all_headers = {"Content-Type": self._content_type(), **(headers or {})}
        if self.response_mode == "json":
            return Reply(status=status, body=json.dumps(message), headers=all_headers, delay=self.delay)
        events = []
        if self.sse_priming_event:
            events.append("id: prime-0\ndata:\n\n")
        events.append(f"event: message\nid: {uuid.uuid4().hex}\ndata: {json.dumps(message)}\n\n")
        # Streamed without Content-Length, as real Streamable HTTP servers do.
        return Reply(status=status, body="".join(events), headers=all_headers, delay=self.delay, chunked=True)
