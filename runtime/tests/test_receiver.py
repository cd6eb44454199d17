"""Bad input on /v1/traces: malformed OTLP, huge payloads, gzip bombs, missing, forged and wrong-scope tokens."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from django.db import OperationalError
from django.test import override_settings

from runtime.models import SpanRecord
from runtime.tests.otlp_builders import as_json, as_protobuf, tool_call

pytestmark = pytest.mark.django_db
GOOD = as_json([tool_call("billing-bot", "create_issue", server="io.github.example/github")])


def _error(response: Any) -> dict[str, Any]:
    return json.loads(response.content)["error"]


def test_no_token_is_401(post_spans: Any) -> None:
    response = post_spans(GOOD, None)
    assert response.status_code == 401
    assert "telemetry scope" in _error(response)["message"]


def test_a_forged_token_is_401(post_spans: Any) -> None:
    response = post_spans(GOOD, "ap_abcdefabcdef_" + "x" * 43)
    assert response.status_code == 401
    assert _error(response)["message"] == "Unknown token."


def test_a_token_without_the_telemetry_scope_is_403(post_spans: Any, telemetry_token: Any) -> None:
    secret, _ = telemetry_token(scopes=("read", "write"))
    response = post_spans(GOOD, secret)
    assert response.status_code == 403
    assert "'telemetry' scope" in _error(response)["message"]


def test_a_telemetry_token_cannot_read_the_api(client: Any, telemetry_token: Any) -> None:
    secret, _ = telemetry_token()
    response = client.get("/api/v1/agents/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"[]", "application/json", "body: expected an object"),
        (b"{}", "application/json", "missing resourceSpans"),
        (
            json.dumps(
                {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "00" * 8}]}]}]}
            ).encode(),
            "application/json",
            "resourceSpans[0].scopeSpans[0].spans[0].traceId",
        ),
        (
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "scopeSpans": [
                                {"spans": [{"traceId": "00" * 16, "spanId": "00" * 8, "startTimeUnixNano": "soon"}]}
                            ]
                        }
                    ]
                }
            ).encode(),
            "application/json",
            "startTimeUnixNano",
        ),
        (b"\xff\xff\xff\xff", "application/x-protobuf", "not a protobuf ExportTraceServiceRequest"),
    ],
)
def test_malformed_otlp_is_400_naming_the_problem(
    post_spans: Any, telemetry_token: Any, body: bytes, content_type: str, fragment: str
) -> None:
    secret, _ = telemetry_token()
    response = post_spans(body, secret, content_type=content_type)
    assert response.status_code == 400, response.content
    assert fragment in _error(response)["message"]
    assert not SpanRecord.objects.exists()


def test_broken_gzip_is_400(post_spans: Any, telemetry_token: Any) -> None:
    secret, _ = telemetry_token()
    response = post_spans(b"not gzip at all", secret, **{"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "not valid gzip" in _error(response)["message"]


def test_another_content_type_is_415(post_spans: Any, telemetry_token: Any) -> None:
    secret, _ = telemetry_token()
    assert post_spans(GOOD, secret, content_type="text/plain").status_code == 415


@override_settings(RUNTIME_OTLP_MAX_BYTES=2048)
def test_an_oversize_body_is_413(post_spans: Any, telemetry_token: Any) -> None:
    secret, _ = telemetry_token()
    body = as_json([tool_call("billing-bot", "create_issue")] * 50)
    response = post_spans(body, secret)
    assert response.status_code == 413
    assert "2048" in _error(response)["message"]


@override_settings(RUNTIME_OTLP_MAX_DECOMPRESSED_BYTES=64 * 1024)
def test_a_gzip_bomb_is_413_without_inflating_it(post_spans: Any, telemetry_token: Any) -> None:
    secret, _ = telemetry_token()
    bomb = gzip.compress(b"{" + b" " * (50 * 1024 * 1024) + b"}")
    assert len(bomb) < 100 * 1024
    response = post_spans(bomb, secret, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "decompresses to more than" in _error(response)["message"]


@override_settings(RUNTIME_OTLP_MAX_SPANS=10)
def test_too_many_spans_in_one_request_is_413(post_spans: Any, telemetry_token: Any) -> None:
    secret, _ = telemetry_token()
    response = post_spans(
        as_protobuf([tool_call("billing-bot", "x")] * 11), secret, content_type="application/x-protobuf"
    )
    assert response.status_code == 413


def test_a_database_that_cannot_take_the_batch_is_429_and_keeps_nothing(
    post_spans: Any, telemetry_token: Any, catalog_setup: Any, monkeypatch: Any
) -> None:
    from runtime import ingest as ingest_module

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("could not obtain lock")

    secret, _ = telemetry_token()
    monkeypatch.setattr(ingest_module, "_write_usage", refuse)
    response = post_spans(GOOD, secret)
    assert response.status_code == 429
    assert response["Retry-After"] == "2"
    assert not SpanRecord.objects.exists()  # rolled back: nothing acknowledged, nothing half-written


def test_too_many_batches_in_flight_is_429(post_spans: Any, telemetry_token: Any, monkeypatch: Any) -> None:
    import threading

    from runtime import receiver

    secret, _ = telemetry_token()
    monkeypatch.setattr(receiver, "_inflight", threading.BoundedSemaphore(1))
    receiver._inflight.acquire()
    response = post_spans(GOOD, secret)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1


def test_refused_spans_and_batches_are_counted_for_metrics(
    post_spans: Any, telemetry_token: Any, catalog_setup: Any, monkeypatch: Any
) -> None:
    from runtime import ingest as ingest_module
    from runtime.metrics import BATCHES, SPANS

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("deadlock detected")

    secret, _ = telemetry_token()
    refused = SPANS.labels(outcome="refused")._value.get()
    malformed = BATCHES.labels(status="400")._value.get()
    monkeypatch.setattr(ingest_module, "_write_usage", refuse)
    assert post_spans(GOOD, secret).status_code == 429
    assert post_spans(b"{", secret).status_code == 400
    assert SPANS.labels(outcome="refused")._value.get() == refused + 1
    assert BATCHES.labels(status="400")._value.get() == malformed + 1
