"""The call-time grant check, answered ahead of the rest of the middleware stack.

A gateway asks before every tool call, so the check's own work (an in-process index lookup) is small beside what
every request pays on its way through Django: sessions, CSRF, authentication, messages, CSP, htmx, login lockout,
Prometheus and URL resolution cost 0.4 ms of CPU per request here, more than the check. None of them applies to
it: the check takes API tokens only (no session, no cookie, so no CSRF), renders JSON (no CSP, no frames) and
writes nothing but findings. So this middleware, placed right after RequestContextMiddleware (request id and audit
context), hands `POST /api/v1/grants/check/` straight to its DRF view: the same view, token authentication,
validation, errors and schema as through the URL, which still routes every other method, and the check itself
when this middleware is not installed. Measured with bench.grant_check (docs/gateways.md has the figures).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import cached_property

from agents_api.api.views import GrantCheckView


class GrantCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.view: Callable[..., Any] = GrantCheckView.as_view()

    @cached_property
    def path(self) -> str:
        return reverse("agents-api:grant-check")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path != self.path:
            return self.get_response(request)
        response = self.view(request)
        response.render()
        response["X-Content-Type-Options"] = "nosniff"
        return response
