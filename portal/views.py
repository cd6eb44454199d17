from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal import selectors
from portal.celery import app as celery_app
from portal.models import ApiToken
from portal.roles import SECURITY_REVIEWER, user_has_role, user_is_platform_admin
from portal.tokens import TokenError, TokenValidationError, token_issue, token_revoke, tokens_visible_to

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    """Password sign-in beside single sign-on; LOCAL_LOGIN_ENABLED=false leaves the single sign-on button only."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            sso_enabled=settings.OIDC_ENABLED,
            sso_name=settings.OIDC_PROVIDER_NAME,
            local_login_enabled=settings.LOCAL_LOGIN_ENABLED,
            **kwargs,
        )

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_LOGIN_ENABLED:
            messages.error(request, "Password sign-in is switched off here: sign in with single sign-on.")
            return self.render_to_response(self.get_context_data(), status=403)
        return super().post(request, *args, **kwargs)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/dashboard.html", selectors.dashboard_summary(user=request.user))


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[ApiToken.Scope.READ]
    )
    expires_in_days = forms.IntegerField(min_value=1, max_value=365, initial=90)
    agent = forms.CharField(
        max_length=63, required=False, help_text="Bind a telemetry token to one agent you own (its own token)."
    )


@login_required
@never_cache
def tokens_page(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = token_issue(
                issued_by=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_in_days=form.cleaned_data["expires_in_days"],
                agent=form.cleaned_data["agent"],
            )
        except TokenValidationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            new_secret = issued.secret
            form = TokenForm()
            messages.success(request, f"Token “{issued.token.name}” created. Copy it now: it will not be shown again.")
    tokens = tokens_visible_to(request.user).order_by("-created_at")
    return render(request, "portal/tokens.html", {"form": form, "tokens": tokens, "new_secret": new_secret})


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(tokens_visible_to(request.user), pk=pk)
    try:
        token_revoke(token=token, revoked_by=request.user)
    except TokenError as exc:
        return HttpResponseForbidden(str(exc))
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("portal:tokens")


@login_required
def audit_page(request: HttpRequest) -> HttpResponse:
    if not (user_is_platform_admin(request.user) or user_has_role(request.user, SECURITY_REVIEWER)):
        return render(
            request,
            "403.html",
            {"reason": "The audit trail is open to security reviewers and platform admins."},
            status=403,
        )
    events = selectors.audit_events(
        object_type=request.GET.get("object_type", ""),
        action=request.GET.get("action", ""),
        actor=request.GET.get("actor", ""),
    )
    page = Paginator(events, 50, allow_empty_first_page=True).get_page(request.GET.get("page"))
    return render(request, "portal/audit.html", {"page": page, "filters": request.GET})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_problem() -> str | None:
    try:
        connection = connections["default"]
        connection.ensure_connection()
        if not connection.is_usable():  # PostgreSQL: Django asks the server; a dropped connection is not usable
            raise ConnectionError("the database connection is not usable")
    except Exception as exc:  # any failure means "not ready"; the reason goes to the probe and the log
        logger.warning("readyz: database unreachable: %s", exc)
        return f"database unreachable: {type(exc).__name__}"
    return None


def _broker_problem() -> str | None:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
    except Exception as exc:
        logger.warning("readyz: broker unreachable: %s", exc)
        return f"broker unreachable: {type(exc).__name__}"
    return None


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_problem(), "broker": _broker_problem()}
    failing = {name: problem for name, problem in checks.items() if problem}
    body = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: (problem or "ok") for name, problem in checks.items()},
    }
    return JsonResponse(body, status=503 if failing else 200)


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    expected = settings.METRICS_TOKEN
    if expected:
        import hmac

        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented, expected):
            return HttpResponse("metrics need the METRICS_TOKEN bearer token\n", status=401, content_type="text/plain")
    from prometheus_client import CONTENT_TYPE_LATEST

    from portal.metrics import scrape

    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(
        request,
        "403.html",
        {"reason": "The form expired or was sent from another site. Reload the page and try again."},
        status=403,
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    return render(request, "500.html", {"request_id": getattr(request, "request_id", "")}, status=500)
