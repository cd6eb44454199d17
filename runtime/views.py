"""Runtime pages: findings (list, one finding and its actions), scorecards, KPIs; panels on catalog pages."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from approvals.selectors import page_requests
from approvals.services import ApprovalConflict, ApprovalError, ApprovalPermissionError
from catalog.models import Agent
from catalog.panels import EntityPage
from catalog.services import CatalogError, CatalogPermissionError
from runtime import findings as finding_services
from runtime import selectors
from runtime.autonomy import open_autonomy_request
from runtime.models import Finding, Scorecard

ENTITY_FINDINGS = 10
# What the catalog and approvals services refuse with (permission, bad input, an open request): shown, not raised.
SERVICE_REFUSALS = (ApprovalConflict, ApprovalError, ApprovalPermissionError, CatalogError, CatalogPermissionError)


@login_required
def findings_page(request: HttpRequest) -> HttpResponse:
    filters = {key: request.GET.get(key, "") for key in ("agent", "tool", "kind", "state")}
    if "state" not in request.GET:
        filters["state"] = Finding.State.OPEN
    if filters["kind"] not in Finding.Kind.values:
        filters["kind"] = ""
    if filters["state"] not in Finding.State.values:
        filters["state"] = ""
    page = Paginator(selectors.finding_list(**filters), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "runtime/findings.html",
        {"page": page, "filters": filters, "kinds": Finding.Kind.choices, "states": Finding.State.choices},
    )


@login_required
def finding_page(request: HttpRequest, pk: int) -> HttpResponse:
    finding = get_object_or_404(Finding, pk=pk)
    return render(
        request,
        "runtime/finding.html",
        {
            "finding": finding,
            "can_manage": selectors.can_manage_finding(user=request.user, finding=finding),
            "grantable": finding.kind in finding_services.GRANTABLE_KINDS,
        },
    )


@login_required
@require_POST
def finding_action(request: HttpRequest, pk: int) -> HttpResponse:
    finding = get_object_or_404(Finding, pk=pk)
    action, reason = request.POST.get("action", ""), request.POST.get("reason", "")
    try:
        if action == "resolve":
            finding_services.finding_resolve(actor=request.user, finding=finding, reason=reason)
        elif action == "accept":
            finding_services.finding_accept(actor=request.user, finding=finding, reason=reason)
        elif action == "request_grant":
            finding_services.finding_request_grant(actor=request.user, finding=finding, justification=reason)
        else:
            messages.error(request, "Choose resolve, accept or request a grant.")
            return redirect("runtime:finding", pk=pk)
    except PermissionError as exc:
        return HttpResponseForbidden(str(exc))
    except finding_services.FindingError as exc:
        messages.error(request, str(exc))
    except finding_services.FindingConflict as exc:
        messages.warning(request, str(exc))
    except SERVICE_REFUSALS as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Finding #{pk}: {action.replace('_', ' ')} done.")
    return redirect("runtime:finding", pk=pk)


@login_required
def scorecards_page(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    level = request.GET.get("level", "")
    cards = Scorecard.objects.all()
    if kind in ("agent", "tool"):
        cards = cards.filter(kind=kind)
    if level:
        cards = cards.filter(level="" if level == "none" else level)
    page = Paginator(cards.order_by("kind", "name"), 100).get_page(request.GET.get("page"))
    return render(request, "runtime/scorecards.html", {"page": page, "kind": kind, "level": level})


def entity_panels(page: EntityPage) -> list[dict[str, Any]]:
    entity = page.entity
    field = "agent" if page.is_agent else "tool"
    open_findings = list(
        selectors.finding_list(**{field: entity.name}, state=Finding.State.OPEN)[: ENTITY_FINDINGS + 1]
    )
    panel: dict[str, Any] = {
        "template": "runtime/panels.html#entity",
        "entity": entity,
        "is_agent": page.is_agent,
        "findings": open_findings[:ENTITY_FINDINGS],
        "more_findings": len(open_findings) > ENTITY_FINDINGS,
        "scorecard": selectors.scorecard_of(kind=field, name=entity.name),
    }
    if isinstance(entity, Agent):
        panel["usage"] = selectors.agent_usage(agent=entity, days=30, grants=list(entity.grants.all()))
        panel["autonomy_request"] = open_autonomy_request(agent=entity, requests=page_requests(page))
    else:
        panel["callers"] = selectors.tool_callers(tool_name=entity.name)
    return [panel]


@login_required
def kpis_page(request: HttpRequest) -> HttpResponse:
    from runtime import charts, kpis

    data = kpis.dashboard()
    figures = [
        ("Agents by risk tier", charts.line_chart(data["agents_by_tier"], title="Agents by risk tier, daily")),
        ("Tools by risk tier", charts.line_chart(data["tools_by_tier"], title="Tools by risk tier, daily")),
        ("Approval requests by state", charts.bar_chart(data["requests_by_state"], title="Requests by state")),
        ("Open requests by age", charts.bar_chart(data["open_requests_by_age"], title="Open requests by age")),
        (
            "Time to approval (hours)",
            charts.line_chart(data["time_to_approval"], title="Hours from submission to approval, median and p90"),
        ),
        (
            "Security-review SLA attainment per stage",
            charts.bar_chart(data["sla_attainment"], title="Decisions within the stage SLA", unit="%"),
        ),
        ("Open findings by kind", charts.line_chart(data["findings_open"], title="Open findings by kind, daily")),
        (
            "Findings opened per day",
            charts.bar_chart(data["findings_opened_per_day"][-14:], title="Findings opened per day"),
        ),
        ("Top agents by calls, 30 days", charts.bar_chart(data["top_agents"], title="Top agents by calls")),
    ]
    return render(request, "runtime/kpis.html", {"figures": figures, "sla_breaches": data["sla_breaches"]})
