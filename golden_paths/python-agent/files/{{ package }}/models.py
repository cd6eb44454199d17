"""Model adapters: a deterministic fake for tests and evals, and an OpenAI-compatible client.

``AGENT_MODEL_PROVIDER`` picks the adapter: ``fake`` (the default) or ``openai``. The OpenAI
client speaks the chat completions API with plain ``urllib.request`` so any compatible
gateway works (set ``OPENAI_BASE_URL``).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

PROVIDER_ENV = "AGENT_MODEL_PROVIDER"
MODEL_ENV = "AGENT_MODEL"
OPENAI_API_KEY_ENV = "OPENAI_API_KEY"
OPENAI_BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


class ModelConfigurationError(RuntimeError):
    """The environment does not describe a usable model provider."""


class ModelResponseError(RuntimeError):
    """The provider answered with something we cannot interpret."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant | tool
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ModelReply:
    content: str
    model: str
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = "stop"


class ModelAdapter(Protocol):
    provider_name: str
    model: str

    def complete(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]]
    ) -> ModelReply: ...


def count_tokens(text: str) -> int:
    """Rough whitespace token count; good enough for the fake model's usage numbers."""
    return len(text.split())


@dataclass
class FakeModel:
    """Deterministic offline model.

    - After a tool result it reports that result.
    - "use <tool> ..." with an offered tool produces a call to that tool.
    - A prompt found in ``responses`` gets the scripted answer.
    - Anything else is echoed back as "Echo: <prompt>".
    """

    model: str = "fake"
    responses: dict[str, str] = field(default_factory=dict)
    provider_name: str = "fake"

    def complete(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]]
    ) -> ModelReply:
        input_tokens = sum(count_tokens(message.content) for message in messages)
        last = messages[-1]
        if last.role == "tool":
            return self._reply(f"{last.name} returned: {last.content}", input_tokens)
        prompt = last.content.strip()
        offered = {str(tool["name"]) for tool in tools}
        match = re.search(r"\buse ([a-z0-9][-a-z0-9]*)\b", prompt.lower())
        if match and match.group(1) in offered:
            call_number = sum(len(message.tool_calls) for message in messages) + 1
            call = ToolCall(
                id=f"call_{call_number}", name=match.group(1), arguments={"input": prompt}
            )
            return ModelReply(
                content="",
                model=self.model,
                tool_calls=(call,),
                input_tokens=input_tokens,
                output_tokens=count_tokens(json.dumps(call.arguments)),
                finish_reason="tool_calls",
            )
        return self._reply(self.responses.get(prompt, f"Echo: {prompt}"), input_tokens)

    def _reply(self, content: str, input_tokens: int) -> ModelReply:
        return ModelReply(
            content=content,
            model=self.model,
            input_tokens=input_tokens,
            output_tokens=count_tokens(content),
        )


Opener = Callable[..., Any]


class OpenAIChatModel:
    """Minimal OpenAI-compatible chat completions client (no SDK dependency)."""

    provider_name = "openai"

    def __init__(
        self,
        model: str,
        api_key: str,
        base_url: str = DEFAULT_OPENAI_BASE_URL,
        timeout_seconds: float = 60.0,
        opener: Opener = urllib.request.urlopen,
    ) -> None:
        parsed = urlparse(base_url)
        local = parsed.hostname in ("localhost", "127.0.0.1", "::1")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
            raise ModelConfigurationError(
                "OPENAI_BASE_URL must use https (http only for localhost)"
            )
        self.model = model
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._timeout_seconds = timeout_seconds
        self._opener = opener

    def complete(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]]
    ) -> ModelReply:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [_to_openai_message(message) for message in messages],
        }
        if tools:
            payload["tools"] = [{"type": "function", "function": dict(tool)} for tool in tools]
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self._url,
            data=json.dumps(payload).encode("utf-8"),
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with self._opener(request, timeout=self._timeout_seconds) as response:
            body = json.loads(response.read().decode("utf-8"))
        return _from_openai_response(body, self.model)


def _to_openai_message(message: Message) -> dict[str, Any]:
    converted: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        converted["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        converted["tool_call_id"] = message.tool_call_id
    return converted


def _from_openai_response(body: Mapping[str, Any], requested_model: str) -> ModelReply:
    try:
        choice = body["choices"][0]
        message = choice["message"]
        tool_calls = tuple(
            ToolCall(
                id=str(call["id"]),
                name=str(call["function"]["name"]),
                arguments=json.loads(call["function"].get("arguments") or "{}"),
            )
            for call in message.get("tool_calls") or []
        )
    except (KeyError, IndexError, TypeError, json.JSONDecodeError) as error:
        raise ModelResponseError(f"unexpected chat completions response: {error}") from error
    usage = body.get("usage") or {}
    return ModelReply(
        content=message.get("content") or "",
        model=str(body.get("model") or requested_model),
        tool_calls=tool_calls,
        input_tokens=int(usage.get("prompt_tokens", 0)),
        output_tokens=int(usage.get("completion_tokens", 0)),
        finish_reason=str(choice.get("finish_reason") or "stop"),
    )


def model_from_env(model: str, environ: Mapping[str, str] | None = None) -> ModelAdapter:
    """Build the adapter named by AGENT_MODEL_PROVIDER (default: the offline fake)."""
    environ = os.environ if environ is None else environ
    provider = environ.get(PROVIDER_ENV, "fake").strip().lower() or "fake"
    model = environ.get(MODEL_ENV) or model
    if provider == "fake":
        return FakeModel(model=model)
    if provider == "openai":
        api_key = environ.get(OPENAI_API_KEY_ENV)
        if not api_key:
            raise ModelConfigurationError(
                f"{OPENAI_API_KEY_ENV} is required for the openai provider"
            )
        base_url = environ.get(OPENAI_BASE_URL_ENV) or DEFAULT_OPENAI_BASE_URL
        return OpenAIChatModel(model=model, api_key=api_key, base_url=base_url)
    raise ModelConfigurationError(f"unknown {PROVIDER_ENV} {provider!r}; use 'fake' or 'openai'")
