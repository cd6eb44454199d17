from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from {{ package }}.agent import (
    Agent,
)
from {{ package }}.approval import (
    approve_all,
)
from {{ package }}.descriptor import (
    AgentDescriptor,
)
from {{ package }}.models import (
    FakeModel,
    Message,
    ModelReply,
    ToolCall,
)
from {{ package }}.tools import (
    Tool,
    ToolRegistry,
)


def lookup(arguments: dict[str, object]) -> dict[str, str]:
    return {"status": "green"}


def make_agent(
    descriptor: AgentDescriptor, tracer: Tracer, *, granted: tuple[str, ...] = ("lookup",)
) -> Agent:
    registry = ToolRegistry(granted_tools=granted, tools=[Tool("lookup", "Look up.", lookup)])
    return Agent(
        descriptor=descriptor,
        registry=registry,
        model=FakeModel(model="fake-1"),
        approver=approve_all,
        tracer=tracer,
    )


@dataclass
class RogueModel:
    """Asks for a tool it was never offered, as a confused real model might."""

    provider_name: str = "fake"
    model: str = "rogue"

    def complete(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]]
    ) -> ModelReply:
        if messages[-1].role == "tool":
            return ModelReply(content="done", model=self.model)
        call = ToolCall(id="call_1", name="lookup", arguments={})
        return ModelReply(
            content="", model=self.model, tool_calls=(call,), finish_reason="tool_calls"
        )


def spans_named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name.startswith(prefix)]


def test_it_traces_an_agent_run_with_genai_spans(
    descriptor: AgentDescriptor, tracer: Tracer, span_exporter: InMemorySpanExporter
) -> None:
    result = make_agent(descriptor, tracer).run("use lookup to check the build")
    assert result.tools_called == ("lookup",)

    (agent_span,) = spans_named(span_exporter, "invoke_agent")
    assert agent_span.name == f"invoke_agent {descriptor.name}"
    assert agent_span.kind == SpanKind.INTERNAL
    attributes = agent_span.attributes or {}
    assert attributes["gen_ai.operation.name"] == "invoke_agent"
    assert attributes["gen_ai.agent.id"] == descriptor.entity_ref
    assert attributes["gen_ai.agent.name"] == descriptor.name
    assert attributes["gen_ai.provider.name"] == "fake"
    assert attributes["gen_ai.request.model"] == "fake-1"
    assert attributes["gen_ai.usage.input_tokens"] == result.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == result.output_tokens
    assert result.input_tokens > 0

    (tool_span,) = spans_named(span_exporter, "execute_tool")
    assert tool_span.name == "execute_tool lookup"
    assert tool_span.kind == SpanKind.INTERNAL
    assert tool_span.parent is not None
    assert tool_span.parent.span_id == agent_span.context.span_id
    tool_attributes = tool_span.attributes or {}
    assert tool_attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_attributes["gen_ai.tool.name"] == "lookup"
    assert tool_attributes["gen_ai.agent.name"] == descriptor.name
    assert tool_attributes["gen_ai.tool.call.id"] == "call_1"

    chat_spans = spans_named(span_exporter, "chat")
    assert len(chat_spans) == 2
    assert all(span.kind == SpanKind.CLIENT for span in chat_spans)


def test_it_does_not_capture_message_content_by_default(
    descriptor: AgentDescriptor, tracer: Tracer, span_exporter: InMemorySpanExporter
) -> None:
    make_agent(descriptor, tracer).run("use lookup to check the build")
    captured = {
        key
        for span in span_exporter.get_finished_spans()
        for key in (span.attributes or {})
        if key
        in (
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
        )
    }
    assert captured == set()


def test_it_captures_content_when_opted_in(
    descriptor: AgentDescriptor,
    tracer: Tracer,
    span_exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    make_agent(descriptor, tracer).run("use lookup to check the build")
    (agent_span,) = spans_named(span_exporter, "invoke_agent")
    assert "check the build" in str((agent_span.attributes or {})["gen_ai.input.messages"])
    (tool_span,) = spans_named(span_exporter, "execute_tool")
    assert "green" in str((tool_span.attributes or {})["gen_ai.tool.call.result"])


def test_it_marks_a_refused_tool_call_as_an_error(
    descriptor: AgentDescriptor, tracer: Tracer, span_exporter: InMemorySpanExporter
) -> None:
    agent = make_agent(descriptor, tracer, granted=())
    agent.model = RogueModel()
    result = agent.run("check the build")
    assert result.tools_called == ()
    (tool_span,) = spans_named(span_exporter, "execute_tool")
    assert tool_span.status.status_code == StatusCode.ERROR
    assert (tool_span.attributes or {})["error.type"] == "ToolNotGrantedError"
