from __future__ import annotations

import io
import json
from typing import Any

import pytest

from {{ package }}.models import (
    FakeModel,
    Message,
    ModelConfigurationError,
    OpenAIChatModel,
    ToolCall,
    model_from_env,
)

LOOKUP_SPEC = {"name": "lookup", "description": "Look things up.", "parameters": {}}


def test_it_uses_the_fake_model_by_default() -> None:
    model = model_from_env("fake", environ={})
    assert isinstance(model, FakeModel)
    assert model.provider_name == "fake"


def test_it_requires_an_api_key_for_openai() -> None:
    with pytest.raises(ModelConfigurationError, match="OPENAI_API_KEY"):
        model_from_env("gpt-4o-mini", environ={"AGENT_MODEL_PROVIDER": "openai"})


def test_it_rejects_an_unknown_provider() -> None:
    with pytest.raises(ModelConfigurationError, match="unknown"):
        model_from_env("x", environ={"AGENT_MODEL_PROVIDER": "mystery"})


def test_it_refuses_plain_http_to_remote_hosts() -> None:
    with pytest.raises(ModelConfigurationError, match="https"):
        OpenAIChatModel(model="m", api_key="k", base_url="http://models.example.com/v1")


def test_the_fake_model_is_deterministic() -> None:
    model = FakeModel()
    messages = [Message("user", "ping")]
    assert model.complete(messages, []) == model.complete(messages, [])
    assert model.complete(messages, []).content == "Echo: ping"


def test_the_fake_model_calls_an_offered_tool_when_asked() -> None:
    reply = FakeModel().complete([Message("user", "use lookup for the weather")], [LOOKUP_SPEC])
    assert [call.name for call in reply.tool_calls] == ["lookup"]
    assert reply.finish_reason == "tool_calls"


def test_the_fake_model_never_calls_a_tool_it_was_not_offered() -> None:
    reply = FakeModel().complete([Message("user", "use lookup for the weather")], [])
    assert reply.tool_calls == ()


class RecordingOpener:
    """Stands in for urllib.request.urlopen: records the request, returns a canned response."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.requests: list[Any] = []

    def __call__(self, request: Any, timeout: float) -> io.BytesIO:
        self.requests.append(request)
        return io.BytesIO(json.dumps(self.response).encode("utf-8"))


def test_the_openai_client_speaks_chat_completions_without_network() -> None:
    opener = RecordingOpener(
        {
            "model": "gpt-test-2025",
            "choices": [
                {
                    "finish_reason": "tool_calls",
                    "message": {
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": '{"input": "x"}'},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5},
        }
    )
    model = OpenAIChatModel(
        model="gpt-test", api_key="sk-test", base_url="https://llm.internal/v1", opener=opener
    )
    history = [
        Message("user", "hi"),
        Message("assistant", "", tool_calls=(ToolCall("call_0", "lookup", {"input": "y"}),)),
        Message("tool", '{"result": 1}', tool_call_id="call_0", name="lookup"),
    ]
    reply = model.complete(history, [LOOKUP_SPEC])

    request = opener.requests[0]
    assert request.full_url == "https://llm.internal/v1/chat/completions"
    assert request.get_header("Authorization") == "Bearer sk-test"
    payload = json.loads(request.data)
    assert payload["model"] == "gpt-test"
    assert payload["tools"][0] == {"type": "function", "function": LOOKUP_SPEC}
    assert payload["messages"][1]["tool_calls"][0]["function"]["name"] == "lookup"
    assert payload["messages"][2]["tool_call_id"] == "call_0"
    assert reply.tool_calls == (ToolCall("call_1", "lookup", {"input": "x"}),)
    assert (reply.input_tokens, reply.output_tokens) == (12, 5)
    assert reply.model == "gpt-test-2025"
