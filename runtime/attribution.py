"""Who did what, read from a span by the OpenTelemetry GenAI and MCP conventions. Pure: no ORM.

- agent: `gen_ai.agent.name`, else `gen_ai.agent.id` (a Backstage ref such as `component:default/name` counts by its
  name), else the resource's `service.name`;
- a tool call: `gen_ai.operation.name = execute_tool` or an MCP `tools/call`; the capability is the MCP tool name
  (`gen_ai.tool.name`, `mcp.tool.name`); the catalog tool (the MCP server) from `mcp.server.name` or
  `portal.tool.name` (a registry or catalog name) or `server.address`;
- a model call: any other GenAI operation naming a model; tokens from `gen_ai.usage.*` (`invoke_agent` spans are
  skipped for tokens: they sum their children);
- environment: the resource's `deployment.environment.name` (default production); errors: `error.type` or an error
  status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from runtime.otlp import SpanFacts

DEFAULT_ENVIRONMENT = "production"
TOOL_OPERATION = "execute_tool"
MCP_TOOL_CALL = "tools/call"
AGENT_OPERATION = "invoke_agent"


@dataclass(frozen=True, slots=True)
class Observation:
    trace_id: str
    span_id: str
    started_at: datetime
    duration_ms: float
    agent: str
    environment: str
    operation: str
    is_tool_call: bool
    server: str  # registry or catalog name of the MCP server, if the span says
    server_address: str
    tool_name: str  # gen_ai.tool.name / mcp.tool.name
    model: str
    input_tokens: int
    output_tokens: int
    error_type: str

    @property
    def is_model_call(self) -> bool:
        return bool(self.model) and not self.is_tool_call and self.operation != AGENT_OPERATION


def _text(value: object) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float) and value > 0:
        return min(int(value), 2**31 - 1)
    return 0


def agent_name(facts: SpanFacts) -> str:
    name = _text(facts.attributes.get("gen_ai.agent.name"))
    if not name:
        ref = _text(facts.attributes.get("gen_ai.agent.id"))
        name = ref.rsplit("/", 1)[-1] if ref else ""
    return (name or _text(facts.resource.get("service.name"))).lower()


def is_genai(facts: SpanFacts) -> bool:
    return "gen_ai.operation.name" in facts.attributes or "mcp.method.name" in facts.attributes


def observe(facts: SpanFacts) -> Observation:
    attributes = facts.attributes
    operation = _text(attributes.get("gen_ai.operation.name"))
    is_tool_call = operation == TOOL_OPERATION or _text(attributes.get("mcp.method.name")) == MCP_TOOL_CALL
    environment = _text(facts.resource.get("deployment.environment.name")) or _text(
        facts.resource.get("deployment.environment")
    )
    error_type = _text(attributes.get("error.type"))
    if not error_type and facts.status_error:
        error_type = "error"
    start = facts.start_ns or facts.end_ns
    duration = max(0, facts.end_ns - facts.start_ns) / 1e6 if facts.start_ns and facts.end_ns else 0.0
    return Observation(
        trace_id=facts.trace_id,
        span_id=facts.span_id,
        started_at=datetime.fromtimestamp(start / 1e9, tz=UTC),
        duration_ms=duration,
        agent=agent_name(facts),
        environment=(environment or DEFAULT_ENVIRONMENT).lower()[:63],
        operation=operation or ("mcp" if is_tool_call else ""),
        is_tool_call=is_tool_call,
        server=_text(attributes.get("mcp.server.name")) or _text(attributes.get("portal.tool.name")),
        server_address=_text(attributes.get("server.address")).lower(),
        tool_name=_text(attributes.get("gen_ai.tool.name")) or _text(attributes.get("mcp.tool.name")),
        model=_text(attributes.get("gen_ai.response.model")) or _text(attributes.get("gen_ai.request.model")),
        input_tokens=_count(attributes.get("gen_ai.usage.input_tokens")),
        output_tokens=_count(attributes.get("gen_ai.usage.output_tokens")),
        error_type=error_type,
    )
