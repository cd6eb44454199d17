from __future__ import annotations

import gzip
from typing import Any

import pytest

from runtime.models import Finding, ModelUsageDaily, SpanRecord, ToolUsageDaily
from runtime.tests.otlp_builders import as_json, as_protobuf, chat, tool_call

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("encode", "content_type"), [(as_json, "application/json"), (as_protobuf, "application/x-protobuf")]
)
def test_it_aggregates_a_granted_call_in_both_encodings(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any, encode: Any, content_type: str
) -> None:
    secret, _ = telemetry_token()
    spans = [tool_call("billing-bot", "create_issue", server="io.github.example/github", duration_ms=30)] * 3
    spans += [
        tool_call(
            "billing-bot", "create_issue", server="io.github.example/github", error="TimeoutError", duration_ms=700
        )
    ]
    spans += [chat("billing-bot", "gpt-4o", input_tokens=1000, output_tokens=200)]
    response = post_spans(encode(spans), secret, content_type=content_type)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == content_type
    row = ToolUsageDaily.objects.get()
    assert (row.agent_key, row.tool_key, row.capability, row.environment) == (
        "billing-bot",
        "github",
        "create_issue",
        "production",
    )
    assert (row.calls, row.errors, row.denied) == (4, 1, 0)
    assert row.le_50ms == 3 and row.le_1000ms == 1
    model = ModelUsageDaily.objects.get()
    assert (model.model, model.calls, model.input_tokens, model.output_tokens) == ("gpt-4o", 1, 1000, 200)
    assert SpanRecord.objects.count() == 5
    assert not Finding.objects.exists()


def test_it_never_stores_message_content(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    secret, _ = telemetry_token()
    assert post_spans(as_json([chat("billing-bot", "gpt-4o")]), secret).status_code == 200
    stored = [str(value) for row in SpanRecord.objects.values() for value in row.values()]
    assert not any("SECRET PROMPT" in value for value in stored)


def test_it_adds_to_the_same_counters_across_batches(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    secret, _ = telemetry_token()
    for _ in range(3):
        body = as_protobuf([tool_call("billing-bot", "create_issue", server="io.github.example/github")] * 2)
        assert post_spans(body, secret, content_type="application/x-protobuf").status_code == 200
    assert ToolUsageDaily.objects.get().calls == 6


def test_it_accepts_gzip(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    secret, _ = telemetry_token()
    body = gzip.compress(as_json([tool_call("billing-bot", "create_issue", server="io.github.example/github")]))
    response = post_spans(body, secret, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert ToolUsageDaily.objects.get().calls == 1


def test_it_attributes_by_environment_and_service_name(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    secret, _ = telemetry_token()
    span = tool_call("", "create_issue", server="io.github.example/github", environment="staging")
    del span["attributes"]["gen_ai.agent.name"]
    assert post_spans(as_json([span], service_name="billing-bot"), secret).status_code == 200
    row = ToolUsageDaily.objects.get()
    assert (row.agent_key, row.environment) == ("billing-bot", "staging")
    assert Finding.objects.get().kind == "environment_not_granted"


def test_it_resolves_the_tool_by_server_address_and_agent_id(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    secret, _ = telemetry_token()
    span = tool_call(
        "",
        "create_issue",
        **{"server.address": "mcp.github.example", "gen_ai.agent.id": "component:default/billing-bot"},
    )
    del span["attributes"]["gen_ai.agent.name"]
    assert post_spans(as_json([span]), secret).status_code == 200
    assert ToolUsageDaily.objects.get().tool_key == "github"
    assert not Finding.objects.exists()


def test_it_ignores_spans_that_are_not_genai(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    secret, _ = telemetry_token()
    body = as_json([{"attributes": {"http.request.method": "GET"}}], service_name="billing-bot")
    assert post_spans(body, secret).status_code == 200
    assert not SpanRecord.objects.exists()
