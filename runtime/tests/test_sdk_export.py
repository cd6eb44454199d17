"""The stock OpenTelemetry SDK and its OTLP/HTTP exporter (protobuf, gzip), as a golden-path agent or a Collector
would send, against a real server: calls show as usage, an ungranted one as a finding."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from runtime.models import Finding, ModelUsageDaily, ToolUsageDaily


@pytest.mark.django_db(transaction=True)
def test_spans_from_the_sdk_exporter_become_usage_and_findings(
    catalog_setup: Any, telemetry_token: Any, live_server: Any
) -> None:
    secret, _ = telemetry_token(user=catalog_setup["alice"], agent="billing-bot")
    resource = Resource.create({"service.name": "billing-bot", "deployment.environment.name": "production"})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {secret}"},
        compression=Compression.Gzip,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=100))
    tracer = provider.get_tracer("golden-path-agent")
    agent = {"gen_ai.agent.name": "billing-bot", "gen_ai.agent.id": "component:default/billing-bot"}
    with tracer.start_as_current_span(
        "invoke_agent billing-bot", attributes={"gen_ai.operation.name": "invoke_agent", **agent}
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
        ) as chat:
            chat.set_attribute("gen_ai.usage.input_tokens", 800)
            chat.set_attribute("gen_ai.usage.output_tokens", 120)
            chat.set_attribute("gen_ai.input.messages", '[{"role": "user", "content": "secret"}]')
        for capability in ("create_issue", "create_issue", "delete_repo"):
            attributes = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": capability,
                "mcp.method.name": "tools/call",
                "server.address": "mcp.github.example",
                **agent,
            }
            with tracer.start_as_current_span(f"execute_tool {capability}", attributes=attributes) as span:
                if capability == "delete_repo":
                    span.set_attribute("error.type", "PermissionError")
                    span.set_status(Status(StatusCode.ERROR))
    assert provider.force_flush(10_000)
    provider.shutdown()
    usage = {
        row.capability: (row.calls, row.errors)
        for row in ToolUsageDaily.objects.filter(agent_key="billing-bot", tool_key="github")
    }
    assert usage == {"create_issue": (2, 0), "delete_repo": (1, 1)}
    model = ModelUsageDaily.objects.get(agent_key="billing-bot")
    assert (model.model, model.input_tokens, model.output_tokens) == ("gpt-4o", 800, 120)
    finding = Finding.objects.get()
    assert (finding.kind, finding.capability) == ("capability_not_granted", "delete_repo")
