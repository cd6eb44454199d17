"""`POST /v1/traces`: OTLP/HTTP in JSON or protobuf, optionally gzip, from agents, gateways or a Collector.

Answers: 200 (the batch is committed), 400 naming what is malformed, 401/403 for a missing, bad or wrong-scope
token, 413 for oversize, 415 for another content type, 429 with Retry-After when the portal is busy or the
database cannot take the batch now (nothing of it was kept; the sender retries). Never a 5xx for load.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from portal.api.errors import error_body
from portal.context import actor_var
from portal.models import ApiToken
from portal.tokens import TokenError, token_actor, token_authenticate, token_has_scope
from runtime import otlp
from runtime.ingest import ingest
from runtime.metrics import BATCHES, SPANS

logger = logging.getLogger(__name__)
_inflight = threading.BoundedSemaphore(settings.RUNTIME_INGEST_MAX_INFLIGHT)


def _error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    BATCHES.labels(status=str(status)).inc()
    response = JsonResponse(error_body(status, code, message), status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _busy(message: str) -> JsonResponse:
    return _error(429, "busy", message, **{"Retry-After": str(settings.RUNTIME_RETRY_AFTER_SECONDS)})


def _token(request: HttpRequest) -> ApiToken | JsonResponse:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if not header:
        return _error(
            401, "not_authenticated", "Send an API token with the telemetry scope: 'Authorization: Bearer ap_...'."
        )
    if scheme.lower() not in {"bearer", "token"} or not raw.strip():
        return _error(401, "authentication_failed", "Malformed Authorization header: expected 'Bearer <token>'.")
    try:
        token = token_authenticate(raw)
    except TokenError as exc:
        return _error(401, "authentication_failed", str(exc))
    if not token_has_scope(token, ApiToken.Scope.TELEMETRY):
        return _error(
            403,
            "permission_denied",
            f"This token lacks the 'telemetry' scope needed to send spans (it has: {', '.join(token.scopes)}).",
        )
    return token


def _body(request: HttpRequest) -> bytes | JsonResponse:
    limit = settings.RUNTIME_OTLP_MAX_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _error(400, "invalid", "Content-Length is not a number.")
    if declared > limit:
        return _error(413, "too_large", f"The body is {declared} bytes; at most {limit} are accepted per request.")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error(413, "too_large", f"The body is over {limit} bytes; send smaller batches.")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        return _error(415, "unsupported_encoding", f"Content-Encoding must be gzip or identity; got {encoding!r}.")
    try:
        return otlp.gunzip(body, limit=settings.RUNTIME_OTLP_MAX_DECOMPRESSED_BYTES)
    except otlp.PayloadTooLarge as exc:
        return _error(413, "too_large", f"Refused: {exc}.")
    except otlp.OtlpError as exc:
        return _error(400, "malformed", str(exc))


@csrf_exempt
@require_POST
def traces(request: HttpRequest) -> HttpResponse:
    token = _token(request)
    if isinstance(token, JsonResponse):
        return token
    content_type = request.content_type or ""
    if content_type not in (otlp.JSON, otlp.PROTOBUF):
        return _error(
            415, "unsupported_media_type", f"Content-Type must be {otlp.JSON} or {otlp.PROTOBUF}; got {content_type!r}."
        )
    if not _inflight.acquire(blocking=False):
        return _busy("Too many telemetry batches in progress; retry after the delay.")
    try:
        body = _body(request)
        if isinstance(body, JsonResponse):
            return body
        try:
            spans = otlp.decode(body, content_type, max_spans=settings.RUNTIME_OTLP_MAX_SPANS)
        except otlp.PayloadTooLarge as exc:
            return _error(413, "too_large", f"Refused: {exc}.")
        except otlp.OtlpError as exc:
            return _error(400, "malformed", f"Malformed OTLP: {exc}")
        actor_var.set(token_actor(token))
        try:
            result = ingest(spans=spans, token=token)
        except DatabaseError as exc:
            logger.warning("telemetry batch of %s spans not stored: %s", len(spans), type(exc).__name__)
            SPANS.labels(outcome="refused").inc(len(spans))
            return _busy("The portal cannot store telemetry right now; nothing of this batch was kept. Retry it.")
    finally:
        _inflight.release()
    SPANS.labels(outcome="accepted").inc(result.accepted)
    SPANS.labels(outcome="ignored").inc(result.ignored)
    BATCHES.labels(status="200").inc()
    return HttpResponse(otlp.encode_response(content_type), content_type=content_type, status=200)
