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


class ReleaseApiViewMiddleware:
    """Lets an API request's view, its rows and its response data go as soon as the response is rendered.

    DRF ties them into reference cycles (a viewset holds its own bound methods, the request's `parser_context` holds
    the view and the request itself, the response's `renderer_context` the view and the request, the view its
    response and its paginator's page), which only the cyclic garbage collector frees. A page of 50 catalog
    entries left about 1,200 lists and dicts behind per request; they reached the oldest generation and made its
    full collections frequent and long (up to 650 ms with the worker's GIL held at 8 clients over gunicorn:
    bench.catalog, API search). Once the response is rendered nothing reads the view or the contexts again: emptying
    them breaks the cycles, so reference counting frees the rows when the response is sent."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        context = getattr(response, "renderer_context", None)
        if isinstance(context, dict):
            view, api_request = context.get("view"), context.get("request")
            if api_request is not None:
                api_request.parser_context = {}
            if view is not None:
                vars(view).clear()
            response.renderer_context = {}  # type: ignore[attr-defined]
        return response
