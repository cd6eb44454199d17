"""OTLP/HTTP trace payloads (JSON and protobuf, optionally gzip) to plain span facts. Pure: no ORM.

Only the attributes the portal reads are kept: names, operation, model, token counts, error type, timing. Message
content (`gen_ai.input.messages`, tool arguments and results...) is never copied out of the payload.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
STATUS_ERROR = 2  # Status.StatusCode.STATUS_CODE_ERROR

SPAN_KEYS = frozenset(
    {
        "gen_ai.agent.name",
        "gen_ai.agent.id",
        "gen_ai.operation.name",
        "gen_ai.tool.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "error.type",
        "mcp.method.name",
        "mcp.server.name",
        "mcp.tool.name",
        "server.address",
        "portal.tool.name",
    }
)
RESOURCE_KEYS = frozenset({"service.name", "deployment.environment.name", "deployment.environment"})


class OtlpError(Exception):
    """The payload is not OTLP the portal can read; the message names the problem (answered as 400)."""


class PayloadTooLarge(Exception):
    """The payload, or what it decompresses to, is over the limit (answered as 413)."""


@dataclass(frozen=True, slots=True)
class SpanFacts:
    trace_id: str
    span_id: str
    start_ns: int
    end_ns: int
    status_error: bool
    attributes: dict[str, Any]  # only SPAN_KEYS
    resource: dict[str, Any]  # only RESOURCE_KEYS


def gunzip(body: bytes, *, limit: int) -> bytes:
    """Decompress at most `limit` bytes: a small gzip bomb must not grow into memory."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit)
        if inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the payload decompresses to more than {limit} bytes")
        data += inflater.flush()
    except zlib.error as exc:
        raise OtlpError(f"Content-Encoding is gzip but the body is not valid gzip: {exc}") from exc
    if len(data) > limit:
        raise PayloadTooLarge(f"the payload decompresses to more than {limit} bytes")
    if not inflater.eof:
        raise OtlpError("Content-Encoding is gzip but the gzip stream is truncated.")
    return data


def decode(body: bytes, content_type: str, *, max_spans: int) -> list[SpanFacts]:
    if content_type == PROTOBUF:
        spans = list(_from_protobuf(body, max_spans))
    elif content_type == JSON:
        spans = list(_from_json(body, max_spans))
    else:
        raise OtlpError(f"Content-Type must be {JSON} or {PROTOBUF}; got {content_type or 'none'!r}.")
    return spans


def encode_response(content_type: str, *, rejected: int = 0, message: str = "") -> bytes:
    if content_type == PROTOBUF:
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        return response.SerializeToString()
    body: dict[str, Any] = {}
    if rejected:
        body["partialSuccess"] = {"rejectedSpans": rejected, "errorMessage": message}
    return json.dumps(body).encode()


# --- protobuf ------------------------------------------------------------------------------------------------


def _pb_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    return None  # arrays, maps and bytes carry nothing the portal reads


def _pb_attributes(attributes: Any, keys: frozenset[str]) -> dict[str, Any]:
    return {item.key: _pb_value(item.value) for item in attributes if item.key in keys}


def _from_protobuf(body: bytes, max_spans: int) -> Iterator[SpanFacts]:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpError(f"The body is not a protobuf ExportTraceServiceRequest: {exc}") from exc
    count = 0
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes, RESOURCE_KEYS)
        for scope_spans in resource_spans.scope_spans:
            count += len(scope_spans.spans)
            if count > max_spans:
                raise PayloadTooLarge(f"more than {max_spans} spans in one request; send smaller batches")
            for span in scope_spans.spans:
                yield SpanFacts(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status_error=span.status.code == STATUS_ERROR,
                    attributes=_pb_attributes(span.attributes, SPAN_KEYS),
                    resource=resource,
                )


# --- JSON (OTLP/JSON: camelCase keys, hex ids, 64-bit integers as strings) --------------------------------------


def _where(path: str, message: str) -> OtlpError:
    return OtlpError(f"{path}: {message}")


def _list(container: dict[str, Any], key: str, path: str) -> list[Any]:
    value = container.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise _where(f"{path}.{key}", f"expected an array, got {type(value).__name__}")
    return value


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _where(path, f"expected an object, got {type(value).__name__}")
    return value


def _json_value(value: Any, path: str) -> Any:
    value = _object(value, path)
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError) as exc:
            raise _where(f"{path}.intValue", f"not an integer: {value['intValue']!r}") from exc
    if "doubleValue" in value:
        return value["doubleValue"]
    return None


def _json_attributes(items: list[Any], keys: frozenset[str], path: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for index, item in enumerate(items):
        item = _object(item, f"{path}[{index}]")
        key = item.get("key")
        if not isinstance(key, str):
            raise _where(f"{path}[{index}].key", "expected a string")
        if key in keys:
            found[key] = _json_value(item.get("value", {}), f"{path}[{index}].value")
    return found


def _nanos(value: Any, path: str) -> int:
    try:
        nanos = int(value)
    except (TypeError, ValueError) as exc:
        raise _where(path, f"expected nanoseconds since the epoch, got {value!r}") from exc
    if nanos < 0:
        raise _where(path, "must not be negative")
    return nanos


def _hex_id(value: Any, length: int, path: str) -> str:
    if not isinstance(value, str) or len(value) != length:
        raise _where(path, f"expected {length} hexadecimal characters")
    try:
        bytes.fromhex(value)
    except ValueError as exc:
        raise _where(path, f"expected {length} hexadecimal characters") from exc
    return value.lower()


def _from_json(body: bytes, max_spans: int) -> Iterator[SpanFacts]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OtlpError(f"The body is not valid JSON: {exc}") from exc
    payload = _object(payload, "body")
    if "resourceSpans" not in payload:
        raise _where("body", "missing resourceSpans (an OTLP ExportTraceServiceRequest)")
    count = 0
    for r_index, resource_spans in enumerate(_list(payload, "resourceSpans", "body")):
        r_path = f"resourceSpans[{r_index}]"
        resource_spans = _object(resource_spans, r_path)
        resource_obj = _object(resource_spans.get("resource", {}), f"{r_path}.resource")
        resource = _json_attributes(
            _list(resource_obj, "attributes", f"{r_path}.resource"), RESOURCE_KEYS, f"{r_path}.resource.attributes"
        )
        for s_index, scope_spans in enumerate(_list(resource_spans, "scopeSpans", r_path)):
            s_path = f"{r_path}.scopeSpans[{s_index}]"
            spans = _list(_object(scope_spans, s_path), "spans", s_path)
            count += len(spans)
            if count > max_spans:
                raise PayloadTooLarge(f"more than {max_spans} spans in one request; send smaller batches")
            for index, span in enumerate(spans):
                path = f"{s_path}.spans[{index}]"
                span = _object(span, path)
                status = _object(span.get("status", {}), f"{path}.status")
                yield SpanFacts(
                    trace_id=_hex_id(span.get("traceId"), 32, f"{path}.traceId"),
                    span_id=_hex_id(span.get("spanId"), 16, f"{path}.spanId"),
                    start_ns=_nanos(span.get("startTimeUnixNano", 0), f"{path}.startTimeUnixNano"),
                    end_ns=_nanos(span.get("endTimeUnixNano", 0), f"{path}.endTimeUnixNano"),
                    status_error=status.get("code") in (STATUS_ERROR, "STATUS_CODE_ERROR"),
                    attributes=_json_attributes(_list(span, "attributes", path), SPAN_KEYS, f"{path}.attributes"),
                    resource=resource,
                )
