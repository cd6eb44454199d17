"""Build OTLP trace payloads for tests and benchmarks: one span per dict of attributes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status


def tool_call(
    agent: str,
    capability: str,
    *,
    server: str = "",
    environment: str = "",
    error: str = "",
    duration_ms: float = 20,
    **extra: Any,
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.agent.name": agent,
        "gen_ai.tool.name": capability,
    }
    if server:
        span["mcp.server.name"] = server
    if error:
        span["error.type"] = error
    span.update(extra)
    return {"attributes": span, "environment": environment, "duration_ms": duration_ms}


def chat(
    agent: str, model: str, *, input_tokens: int = 100, output_tokens: int = 50, environment: str = ""
) -> dict[str, Any]:
    return {
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.agent.name": agent,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.input.messages": "SECRET PROMPT CONTENT",
        },
        "environment": environment,
        "duration_ms": 300,
    }


def _groups(spans: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for span in spans:
        groups.setdefault(span.get("environment", ""), []).append(span)
    return groups


def _times(span: Mapping[str, Any], now_ns: int) -> tuple[int, int]:
    start = span.get("start_ns") or now_ns
    return start, start + int(span.get("duration_ms", 10) * 1e6)


def as_json(spans: Iterable[Mapping[str, Any]], *, service_name: str = "") -> bytes:
    now_ns = time.time_ns()

    def value(raw: Any) -> dict[str, Any]:
        if isinstance(raw, bool):
            return {"boolValue": raw}
        if isinstance(raw, int):
            return {"intValue": str(raw)}
        if isinstance(raw, float):
            return {"doubleValue": raw}
        return {"stringValue": str(raw)}

    resource_spans = []
    for environment, group in _groups(spans).items():
        resource_attributes = []
        if environment:
            resource_attributes.append({"key": "deployment.environment.name", "value": {"stringValue": environment}})
        if service_name:
            resource_attributes.append({"key": "service.name", "value": {"stringValue": service_name}})
        json_spans = []
        for span in group:
            start, end = _times(span, now_ns)
            json_spans.append(
                {
                    "traceId": os.urandom(16).hex(),
                    "spanId": os.urandom(8).hex(),
                    "name": "span",
                    "startTimeUnixNano": str(start),
                    "endTimeUnixNano": str(end),
                    "attributes": [{"key": k, "value": value(v)} for k, v in span["attributes"].items()],
                    "status": {"code": 2} if span.get("status_error") else {},
                }
            )
        resource_spans.append(
            {
                "resource": {"attributes": resource_attributes},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": json_spans}],
            }
        )
    return json.dumps({"resourceSpans": resource_spans}).encode()


def as_protobuf(spans: Iterable[Mapping[str, Any]], *, service_name: str = "") -> bytes:
    now_ns = time.time_ns()
    request = ExportTraceServiceRequest()

    def any_value(raw: Any) -> AnyValue:
        if isinstance(raw, bool):
            return AnyValue(bool_value=raw)
        if isinstance(raw, int):
            return AnyValue(int_value=raw)
        if isinstance(raw, float):
            return AnyValue(double_value=raw)
        return AnyValue(string_value=str(raw))

    for environment, group in _groups(spans).items():
        resource_spans = request.resource_spans.add()
        if environment:
            resource_spans.resource.attributes.append(
                KeyValue(key="deployment.environment.name", value=any_value(environment))
            )
        if service_name:
            resource_spans.resource.attributes.append(KeyValue(key="service.name", value=any_value(service_name)))
        scope_spans = resource_spans.scope_spans.add()
        for span in group:
            start, end = _times(span, now_ns)
            pb = scope_spans.spans.add()
            pb.trace_id, pb.span_id, pb.name = os.urandom(16), os.urandom(8), "span"
            pb.start_time_unix_nano, pb.end_time_unix_nano = start, end
            if span.get("status_error"):
                pb.status.code = Status.STATUS_CODE_ERROR
            for key, raw in span["attributes"].items():
                pb.attributes.append(KeyValue(key=key, value=any_value(raw)))
    return request.SerializeToString()
