"""The agent loop: ask the model, run granted tools (with approval), repeat until it answers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Tracer

from . import telemetry
from .approval import Approver, approve_all, deny_all
from .descriptor import AgentDescriptor, load_descriptor
from .models import Message, ModelAdapter, ModelReply, ToolCall, model_from_env
from .tools import Tool, ToolRegistry

SYSTEM_PROMPT = (
    "You are {name}, an AI agent owned by {owner}. {description} "
    "Only use the tools you are offered."
)
STEP_LIMIT_MESSAGE = "Stopped: the step limit for this autonomy level was reached."


@dataclass(frozen=True)
class ToolExecution:
    call: ToolCall
    approved: bool
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class AgentResult:
    output: str
    executions: tuple[ToolExecution, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def tools_called(self) -> tuple[str, ...]:
        """Tools that actually ran (approved and without error)."""
        return tuple(
            execution.call.name
            for execution in self.executions
            if execution.approved and execution.error is None
        )


@dataclass
class Agent:
    descriptor: AgentDescriptor
    registry: ToolRegistry
    model: ModelAdapter
    approver: Approver | None = None
    tracer: Tracer = field(default_factory=telemetry.get_tracer)
    capture_content: bool = field(default_factory=telemetry.capture_message_content)
    max_steps: int | None = None

    @classmethod
    def from_environment(cls, tools: Iterable[Tool] | None = None, **overrides: Any) -> Agent:
        descriptor = load_descriptor()
        return cls(
            descriptor=descriptor,
            registry=ToolRegistry.from_descriptor(descriptor, tools),
            model=model_from_env(descriptor.model),
            **overrides,
        )

    @property
    def step_limit(self) -> int:
        # More autonomy, more model turns before the agent must hand back to a human.
        return self.max_steps if self.max_steps is not None else 2 * self.descriptor.autonomy_level

    def _approve(self, call: ToolCall) -> bool:
        if self.approver is not None:
            return self.approver(call)
        return (deny_all if self.descriptor.requires_approval else approve_all)(call)

    def run(self, prompt: str) -> AgentResult:
        descriptor, model = self.descriptor, self.model
        messages = [
            Message(
                role="system",
                content=SYSTEM_PROMPT.format(
                    name=descriptor.name, owner=descriptor.owner, description=descriptor.description
                ),
            ),
            Message(role="user", content=prompt),
        ]
        executions: list[ToolExecution] = []
        input_tokens = output_tokens = 0
        output = STEP_LIMIT_MESSAGE
        with telemetry.invoke_agent_span(
            self.tracer, descriptor, model.provider_name, model.model
        ) as span:
            for _ in range(self.step_limit):
                reply = self._chat(messages)
                input_tokens += reply.input_tokens
                output_tokens += reply.output_tokens
                if not reply.tool_calls:
                    output = reply.content
                    break
                messages.append(
                    Message(role="assistant", content=reply.content, tool_calls=reply.tool_calls)
                )
                for call in reply.tool_calls:
                    execution = self._execute(call)
                    executions.append(execution)
                    messages.append(
                        Message(
                            role="tool",
                            content=telemetry.as_json(_tool_message_payload(execution)),
                            tool_call_id=call.id,
                            name=call.name,
                        )
                    )
            span.set_attribute(telemetry.GEN_AI_USAGE_INPUT_TOKENS, input_tokens)
            span.set_attribute(telemetry.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
            if self.capture_content:
                span.set_attribute(telemetry.GEN_AI_INPUT_MESSAGES, _messages_json(messages[:2]))
                span.set_attribute(
                    telemetry.GEN_AI_OUTPUT_MESSAGES,
                    _messages_json([Message(role="assistant", content=output)]),
                )
        return AgentResult(
            output=output,
            executions=tuple(executions),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )

    def _chat(self, messages: list[Message]) -> ModelReply:
        model = self.model
        with telemetry.chat_span(self.tracer, model.provider_name, model.model) as span:
            offered = [tool.spec() for tool in self.registry.enabled_tools()]
            reply = model.complete(messages, offered)
            span.set_attribute(telemetry.GEN_AI_RESPONSE_MODEL, reply.model)
            span.set_attribute(telemetry.GEN_AI_RESPONSE_FINISH_REASONS, [reply.finish_reason])
            span.set_attribute(telemetry.GEN_AI_USAGE_INPUT_TOKENS, reply.input_tokens)
            span.set_attribute(telemetry.GEN_AI_USAGE_OUTPUT_TOKENS, reply.output_tokens)
            if self.capture_content:
                span.set_attribute(telemetry.GEN_AI_INPUT_MESSAGES, _messages_json(messages))
                span.set_attribute(
                    telemetry.GEN_AI_OUTPUT_MESSAGES,
                    _messages_json([Message("assistant", reply.content, reply.tool_calls)]),
                )
            return reply

    def _execute(self, call: ToolCall) -> ToolExecution:
        if not self._approve(call):
            return ToolExecution(call=call, approved=False, error="denied by the human approver")
        model = self.model
        with telemetry.execute_tool_span(
            self.tracer, self.descriptor, model.provider_name, model.model, call.name, call.id
        ) as span:
            if self.capture_content:
                span.set_attribute(
                    telemetry.GEN_AI_TOOL_CALL_ARGUMENTS, telemetry.as_json(call.arguments)
                )
            try:
                result = self.registry.call(call.name, call.arguments)
            # Any failure is reported to the model and to the trace, never swallowed silently.
            except Exception as error:
                telemetry.record_error(span, error)
                return ToolExecution(
                    call=call, approved=True, error=f"{type(error).__name__}: {error}"
                )
            if self.capture_content:
                span.set_attribute(telemetry.GEN_AI_TOOL_CALL_RESULT, telemetry.as_json(result))
            return ToolExecution(call=call, approved=True, result=result)


def _tool_message_payload(execution: ToolExecution) -> dict[str, Any]:
    if execution.error is not None:
        return {"error": execution.error}
    return {"result": execution.result}


def _messages_json(messages: list[Message]) -> str:
    """Messages in the GenAI semantic-conventions shape (role + parts), as a JSON string."""
    converted = []
    for message in messages:
        parts: list[dict[str, Any]] = []
        if message.role == "tool":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": message.tool_call_id,
                    "result": message.content,
                }
            )
        elif message.content:
            parts.append({"type": "text", "content": message.content})
        parts.extend(
            {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
            for call in message.tool_calls
        )
        converted.append({"role": message.role, "parts": parts})
    return json.dumps(converted, sort_keys=True)
