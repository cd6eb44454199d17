"""The call-time grant check answered in front of Django, for gateways that ask before every tool call.

Issue 17 asks for p95 <= 5 ms at 8 concurrent clients over HTTP. On this project's 2-core machines a check through
Django's handler costs 1.2-1.4 ms of gunicorn CPU (request object, URL resolution, DRF's request, negotiation,
serializer and response), so 8 closed-loop clients queue to p95 ~19 ms; a WSGI callable answering the same JSON in
the same gunicorn does ~3 ms (bench.grant_check; figures in docs/gateways.md). So `portal.wsgi` wraps Django in
GrantCheckFront, which answers `POST /api/v1/grants/check/` itself in the common case and hands everything else to
Django untouched.

It is an adapter, not a second implementation: the decision (agents_api.checks.grant_check over the grant index),
the token verification and its cache (agents_api.authentication), the request context (portal.context), the answer
(checks.check_answer) and its JSON rendering (DRF's renderer) are the ones the DRF view uses. What it does by itself
is read the HTTP request, and it answers only requests it can read without doubt: a token verified in the last few
seconds that has the `read` scope, a small JSON object with only the documented fields, each a clean string within
the serializer's length, for an allowed host (and over HTTPS when SECURE_SSL_REDIRECT is on). Anything else (first
sight of a token, a bad body, another content type or Accept, a missing scope, a host or scheme Django would refuse
or redirect, an error) goes to the DRF view with the same body, which answers it with its usual errors. Django's
request_started/request_finished signals are sent around the check, so database connections are kept as for any
request.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.urls import get_script_prefix, reverse
from rest_framework.fields import CharField
from rest_framework.renderers import JSONRenderer

from agents_api.api.serializers import GrantCheckRequestSerializer
from agents_api.authentication import remembered_token
from agents_api.checks import check_answer, enforce_requested, grant_check
from portal.context import request_scope
from portal.models import ApiToken
from portal.tokens import token_has_scope

logger = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

MAX_BODY_BYTES = 4096  # four names; a larger body is the DRF view's to refuse or read
JSON_TYPES = {"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}
ACCEPTS_JSON = {"", "*/*", "application/json"}
STATUS_LINES = {200: "200 OK", 403: "403 Forbidden"}
_FIELDS = GrantCheckRequestSerializer().fields
# The longest value of each field, from the serializer that documents and validates them.
MAX_LENGTHS: dict[str, int] = {
    name: cast(CharField, _FIELDS[name]).max_length or 0 for name in ("agent", "tool", "capability", "environment")
}
REQUIRED = {name for name, field in _FIELDS.items() if field.required}
_render = JSONRenderer().render
ANSWERED_IN_FRONT = "portal.grant_check_answered_in_front"  # the same key in gunicorn.conf.py


def readable_check(body: bytes) -> dict[str, Any] | None:
    """The check's arguments when the body is plainly valid (what the serializer would accept unchanged), else None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not REQUIRED <= data.keys() <= MAX_LENGTHS.keys():
        return None
    for name, value in data.items():
        if value is None and name == "capability":
            continue
        # Printable (no NUL, no control or surrogate characters), no surrounding blanks (the serializer trims them),
        # not blank, within the length: exactly what the serializer takes as it is.
        if not isinstance(value, str) or not value or not value.isprintable() or value != value.strip():
            return None
        if len(value) > MAX_LENGTHS[name]:
            return None
    return data


class GrantCheckFront:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._path = ""

    @property
    def path(self) -> str:
        if not self._path:  # the URLconf is loaded on first use, as Django's handler does
            # PATH_INFO leaves out a mount point (SCRIPT_NAME); reverse() puts in the one of the thread's last request.
            self._path = "/" + reverse("agents-api:grant-check").removeprefix(get_script_prefix())
        return self._path

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != self.path:
            return self.app(environ, start_response)
        body = self._body(environ)
        if body is not None:
            answered = self._answer(environ, body)
            if answered is not None:
                status, headers, content = answered
                environ[ANSWERED_IN_FRONT] = True  # gunicorn.conf.py leaves it out of the access log
                start_response(status, headers)
                return [content]
            environ["wsgi.input"] = io.BytesIO(body)  # the DRF view reads the same bytes
        return self.app(environ, start_response)

    @staticmethod
    def _body(environ: dict[str, Any]) -> bytes | None:
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= MAX_BODY_BYTES:
            return None
        return environ["wsgi.input"].read(length)

    def _answer(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
        if (
            environ.get("CONTENT_TYPE", "").lower() not in JSON_TYPES
            or environ.get("HTTP_ACCEPT", "") not in ACCEPTS_JSON
        ):
            return None
        request = WSGIRequest(environ)  # Django's own reading of the host and the scheme; the body is ours already
        try:
            request.get_host()  # ALLOWED_HOSTS
        except DisallowedHost:
            return None
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return None  # SecurityMiddleware redirects it
        arguments = readable_check(body)
        if arguments is None:
            return None
        enforce = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)).get("enforce", "")
        request_started.send(sender=self.__class__, environ=environ)
        try:
            with request_scope(
                incoming_id=environ.get("HTTP_X_REQUEST_ID", ""),
                client_ip=environ.get("REMOTE_ADDR"),
                path=self.path,
            ) as request_id:
                verified = remembered_token(environ.get("HTTP_AUTHORIZATION", ""))
                if verified is None or not token_has_scope(verified[1], ApiToken.Scope.READ):
                    return None
                decision = grant_check(**{"capability": None, **arguments})  # the serializer's defaults
        except Exception:  # the DRF view answers it again, with the API's error format
            logger.exception("grant check in front of Django failed; handing it to the view")
            return None
        finally:
            request_finished.send(sender=self.__class__)
        status, answer = check_answer(decision, enforce=enforce_requested(enforce))
        content = _render(answer)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(content))),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Request-ID", request_id),
        ]
        return STATUS_LINES[status], headers, content
