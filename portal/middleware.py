from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from portal.context import actor_for_user, actor_var, request_scope


class RequestContextMiddleware:
    """Assigns a request id (kept from X-Request-ID when well-formed) and records the client address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_scope(
            incoming_id=request.headers.get("X-Request-ID", ""),
            client_ip=request.META.get("REMOTE_ADDR"),
            path=request.path,
        ) as request_id:
            request.request_id = request_id  # type: ignore[attr-defined]
            response = self.get_response(request)
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
