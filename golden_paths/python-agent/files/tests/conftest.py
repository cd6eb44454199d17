from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from {{ package }}.descriptor import (
    AgentDescriptor,
    load_descriptor,
)


@pytest.fixture(autouse=True)
def offline_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never talk to a real model or portal and never capture content unless they opt in."""
    for variable in (
        "AGENT_MODEL",
        "AGENT_ENVIRONMENT",
        "AGENT_DESCRIPTOR",
        "PORTAL_URL",
        "PORTAL_TOKEN",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    ):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def descriptor() -> AgentDescriptor:
    return load_descriptor()


@dataclass
class StubPortal:
    """The portal's grant check and listings, served on loopback for this project's own tests."""

    url: str = ""
    allowed: bool = True
    reason: str = "approved grant 7 covers lookup in production"
    checks: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    servers: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def stub_portal() -> Iterator[StubPortal]:
    state = StubPortal()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.startswith("/api/v1/grants/"):
                self._answer({"results": state.grants})
            else:
                self._answer({"servers": state.servers})

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.checks.append(json.loads(self.rfile.read(length)))
            grant = 7 if state.allowed else None
            self._answer({"allowed": state.allowed, "reason": state.reason, "grant": grant})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Lookups:
    calls: list[str] = field(default_factory=list)


@pytest.fixture
def lookups() -> Lookups:
    return Lookups()


@pytest.fixture
def mcp_server(lookups: Lookups) -> MCPServer:
    """A tiny MCP server, run in-process through the real MCP protocol."""
    server = MCPServer(name="status")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False))
    def lookup(service: str) -> dict[str, str]:
        """Look up the status of a service."""
        lookups.calls.append(service)
        return {"service": service, "status": "green"}

    return server


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter
