"""OpenTelemetry spans following the GenAI semantic conventions (development status).

Spans: ``invoke_agent {agent}`` (INTERNAL) around a run, ``chat {model}`` (CLIENT) per model
call and ``execute_tool {tool}`` (INTERNAL) per tool call. Message content, tool arguments and
tool results are opt-in: set OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from .descriptor import AgentDescriptor

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"

OPERATION_INVOKE_AGENT = "invoke_agent"
OPERATION_EXECUTE_TOOL = "execute_tool"
OPERATION_CHAT = "chat"

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = frozenset({"true", "1", "yes", "span_only", "span_and_event"})


def capture_message_content(environ: Mapping[str, str] | None = None) -> bool:
    """Content capture is off unless explicitly enabled: prompts and tool data may hold PII."""
    environ = os.environ if environ is None else environ
    return environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON


def get_tracer() -> Tracer:
    return trace.get_tracer(__name__)


def configure_console_tracing() -> None:
    """For local runs: print spans when OTEL_TRACES_EXPORTER=console. Production wires OTLP."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() != "console":
        return
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def record_error(span: Span, error: BaseException) -> None:
    span.set_attribute(ERROR_TYPE, type(error).__name__)
    span.set_status(Status(StatusCode.ERROR, str(error)))


@contextmanager
def invoke_agent_span(
    tracer: Tracer, descriptor: AgentDescriptor, provider_name: str, model: str
) -> Iterator[Span]:
    attributes = {
        GEN_AI_OPERATION_NAME: OPERATION_INVOKE_AGENT,
        GEN_AI_PROVIDER_NAME: provider_name,
        GEN_AI_AGENT_ID: descriptor.entity_ref,
        GEN_AI_AGENT_NAME: descriptor.name,
        GEN_AI_AGENT_DESCRIPTION: descriptor.description,
        GEN_AI_REQUEST_MODEL: model,
    }
    with tracer.start_as_current_span(
        f"{OPERATION_INVOKE_AGENT} {descriptor.name}", kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:
        yield span


@contextmanager
def chat_span(tracer: Tracer, provider_name: str, model: str) -> Iterator[Span]:
    attributes = {
        GEN_AI_OPERATION_NAME: OPERATION_CHAT,
        GEN_AI_PROVIDER_NAME: provider_name,
        GEN_AI_REQUEST_MODEL: model,
    }
    with tracer.start_as_current_span(
        f"{OPERATION_CHAT} {model}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


@contextmanager
def execute_tool_span(
    tracer: Tracer,
    descriptor: AgentDescriptor,
    provider_name: str,
    model: str,
    tool_name: str,
    call_id: str,
) -> Iterator[Span]:
    attributes = {
        GEN_AI_OPERATION_NAME: OPERATION_EXECUTE_TOOL,
        GEN_AI_PROVIDER_NAME: provider_name,
        GEN_AI_REQUEST_MODEL: model,
        GEN_AI_AGENT_ID: descriptor.entity_ref,
        GEN_AI_AGENT_NAME: descriptor.name,
        GEN_AI_TOOL_NAME: tool_name,
        GEN_AI_TOOL_TYPE: "function",
        GEN_AI_TOOL_CALL_ID: call_id,
    }
    with tracer.start_as_current_span(
        f"{OPERATION_EXECUTE_TOOL} {tool_name}", kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:
        yield span
