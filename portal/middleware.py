from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from portal.context import actor_for_user, actor_var, channel_var, client_ip_var, request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Assigns a request id (kept from X-Request-ID when well-formed) and records the client address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        tokens = (
            request_id_var.set(request_id),
            client_ip_var.set(request.META.get("REMOTE_ADDR")),
            actor_var.set(None),
            channel_var.set("api" if request.path.startswith(("/api/", "/mcp/", "/v0.1/")) else "ui"),
        )
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(tokens[0])
            client_ip_var.reset(tokens[1])
            actor_var.reset(tokens[2])
            channel_var.reset(tokens[3])
        response["X-Request-ID"] = request_id
        return response


class AuditActorMiddleware:
    """Session users become the audit actor; API token requests set it in the authentication class."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        actor = actor_for_user(getattr(request, "user", None))
        if actor is not None:
            actor_var.set(actor)
        return self.get_response(request)
