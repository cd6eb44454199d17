"""Approval pages: the reviewer queue, a request, my requests, notification preferences, and the panels the catalog
shows on agent, tool and team pages.

Each view parses input, calls one service or selector and renders. The services decide who may do what; a view
only chooses which buttons to offer and turns the services' exceptions into answers: ApprovalError is 400 with the
errors on their fields, ApprovalPermissionError 403, ApprovalConflict (a stale page, a lost race) 409. A decision in
the queue is a real form; htmx posts it and swaps the one row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import attestation, preferences, selectors, services, submitting
from approvals import decisions as approvals_decisions
from approvals.forms import (
    DecisionForm,
    GrantRequestForm,
    QueueFilterForm,
    ResubmitForm,
    SubmitForm,
    TeamWebhookForm,
    UserPreferenceForm,
)
from approvals.models import OPEN_STATES, ApprovalRequest, Decision
from catalog import selectors as catalog_selectors
from catalog import services as catalog_services
from catalog.attestation import tool_current_attestation
from catalog.models import Agent, Team, Tool
from catalog.panels import EntityPage

PAGE_SIZE = 50
SUBJECT_RELATIONS = ("agent", "tool", "grant__agent", "grant__tool")
TEAM_OPEN_REQUESTS = 50


def _actor(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    assert isinstance(user, AbstractBaseUser), "the view is login_required"
    return user


def _wants_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    return target if target and allowed else default


def _page(request: HttpRequest, queryset: QuerySet[ApprovalRequest]) -> Page:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _load_request(pk: int) -> ApprovalRequest:
    try:
        return selectors.request_detail(request_id=pk)
    except ApprovalRequest.DoesNotExist as exc:
        raise Http404(f"There is no approval request #{pk}.") from exc


# --- the reviewer queue ------------------------------------------------------------------------------------


def _row(
    item: ApprovalRequest,
    *,
    now: datetime,
    form: DecisionForm | None = None,
    error: str = "",
    decided: bool = False,
) -> dict[str, Any]:
    return {
        "req": item,
        "checks": selectors.current_checks(item),
        "form": form or DecisionForm(initial={"stage_index": item.current_stage}),
        "error": error,
        "decided": decided,
        "attest": item.current_role == services.OWNER_ATTESTATION_ROLE,
        "overdue": item.due_at is not None and item.due_at < now,
    }


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    awaiting = selectors.review_queue(user=request.user)
    teams = (
        awaiting.prefetch_related(None)
        .order_by("owning_team__name")
        .values_list("owning_team__name", flat=True)
        .distinct()
    )
    filter_form = QueueFilterForm(request.GET, teams=teams)
    filters = filter_form.filters()
    page = _page(request, selectors.review_queue(user=request.user, **filters).select_related(*SUBJECT_RELATIONS))
    now = timezone.now()
    context = {
        "filter_form": filter_form,
        "filtered": any(filters.values()),
        "page": page,
        "query": _query_without_page(request),
        "rows": [_row(item, now=now) for item in page],
        "next_url": request.get_full_path(),
    }
    return render(request, "approvals/queue.html", context)


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    form = DecisionForm(request.POST)
    status, error = 200, ""
    decided_request: ApprovalRequest | None = None
    if not form.is_valid():
        status = 400
    else:
        try:
            decided_request = approvals_decisions.request_decide(
                actor=_actor(request),
                request_id=pk,
                outcome=form.cleaned_data["outcome"],
                comment=form.cleaned_data["comment"],
                stage_index=form.cleaned_data["stage_index"],
                facts_fingerprint=form.cleaned_data["facts_fingerprint"] or None,
                subject_ref=form.cleaned_data["subject_ref"],
            )
        except services.ApprovalError as exc:
            form.add_service_errors(exc.errors)
            status = 400
        except services.ApprovalPermissionError as exc:
            status, error = 403, str(exc)
        except services.ApprovalConflict as exc:
            status, error = 409, str(exc)
    decided = status == 200
    # The service hands back the row it locked and changed (people included): only its subject is left to load.
    item = selectors.with_subject(decided_request) if decided_request is not None else _load_request(pk)
    if _wants_partial(request):
        next_url = _safe_next(request, reverse("approvals:queue"))
        row = _row(item, now=timezone.now(), form=None if decided else form, error=error, decided=decided)
        return render(request, "approvals/queue.html#row", {"row": row, "next_url": next_url}, status=status)
    if decided:
        messages.success(
            request, f"Recorded your decision on #{item.pk}: {item.title} is now {item.get_state_display()}."
        )
        return redirect(_safe_next(request, reverse("approvals:request", args=[item.pk])))
    return _render_request_page(request, item, decision_form=form, error=error, status=status)


# --- one request ---------------------------------------------------------------------------------------------


def _stage_progress(item: ApprovalRequest) -> list[dict[str, Any]]:
    """Each stage of the policy with its decision in this round, and whether it is done, current or to come."""
    decisions = {d.stage_index: d for d in item.decisions.filter(round=item.round).select_related("reviewer")}
    progress = []
    for index, stage in enumerate(item.stages):
        decision = decisions.get(index)
        if decision is not None:
            status = "done" if decision.outcome == "approve" else decision.outcome
        elif item.state == ApprovalRequest.State.IN_REVIEW and index == item.current_stage:
            status = "current"
        elif item.state == ApprovalRequest.State.APPROVED:
            status = "done"
        else:
            status = "to come"
        progress.append({"number": index + 1, "stage": stage, "decision": decision, "status": status})
    return progress


def _requester_actions(user: AbstractBaseUser | AnonymousUser, item: ApprovalRequest) -> dict[str, bool]:
    """Which buttons to offer; the services check the same again and answer 403 or 409 if they no longer hold."""
    is_requester = user.pk == item.requester_id
    can_resubmit = item.state == ApprovalRequest.State.CHANGES_REQUESTED and (
        is_requester or catalog_services.can_create_for(user, item.owning_team)
    )
    return {"can_withdraw": is_requester and item.is_open, "can_resubmit": can_resubmit}


def _render_request_page(
    request: HttpRequest,
    item: ApprovalRequest,
    *,
    decision_form: DecisionForm | None = None,
    resubmit_form: ResubmitForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    refusal = approvals_decisions.decision_refusal(request.user, item)
    context = {
        "hints": attestation.hints_panel(item, request.user),
        "req": item,
        "checks": selectors.current_checks(item),
        "stages": _stage_progress(item),
        "changes": approvals_decisions.resubmission_changes(item),
        "timeline": selectors.request_timeline(request=item),
        "refusal": refusal,
        "decision_form": decision_form or DecisionForm(initial={"stage_index": item.current_stage}),
        "resubmit_form": resubmit_form or ResubmitForm(),
        "attest": item.current_role == services.OWNER_ATTESTATION_ROLE,
        "overdue": item.due_at is not None and item.due_at < timezone.now(),
        "error": error,
        **_requester_actions(request.user, item),
    }
    return render(request, "approvals/request.html", context, status=status)


@login_required
@require_GET
def request_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_request_page(request, _load_request(pk))


@login_required
@require_POST
def attest_hints(request: HttpRequest, pk: int) -> HttpResponse:
    item = _load_request(pk)
    tool = attestation.request_tool(item)
    if tool is None:
        raise Http404("This request has no tool whose hints could be attested.")
    try:
        attestation.hints_attest(
            actor=_actor(request),
            tool=tool,
            capabilities_hash=request.POST.get("capabilities_hash", ""),
            comment=request.POST.get("comment", ""),
        )
    except services.ApprovalError as exc:
        error = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.errors.items())
        return _render_request_page(request, item, error=error, status=400)
    except services.ApprovalPermissionError as exc:
        return _render_request_page(request, item, error=str(exc), status=403)
    except services.ApprovalConflict as exc:
        return _render_request_page(request, _load_request(pk), error=str(exc), status=409)
    messages.success(request, f"You attested the capability hints of {tool.name}; the rubric now trusts them.")
    return redirect(reverse("approvals:request", args=[pk]))


@login_required
@require_POST
def withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        item = approvals_decisions.request_withdraw(actor=_actor(request), request_id=pk)
    except services.ApprovalPermissionError as exc:
        return _render_request_page(request, _load_request(pk), error=str(exc), status=403)
    except services.ApprovalConflict as exc:
        if not ApprovalRequest.objects.filter(pk=pk).exists():
            raise Http404(str(exc)) from exc
        return _render_request_page(request, _load_request(pk), error=str(exc), status=409)
    messages.success(request, f"Withdrew request #{item.pk}: {item.title}.")
    return redirect(_safe_next(request, reverse("approvals:request", args=[item.pk])))


@login_required
@require_POST
def resubmit(request: HttpRequest, pk: int) -> HttpResponse:
    form = ResubmitForm(request.POST)
    if not form.is_valid():
        return _render_request_page(request, _load_request(pk), resubmit_form=form, status=400)
    try:
        item = submitting.request_resubmit(
            actor=_actor(request),
            request_id=pk,
            justification=form.cleaned_data["justification"] or None,
            attest=form.cleaned_data["attest"],
        )
    except services.ApprovalPermissionError as exc:
        return _render_request_page(request, _load_request(pk), error=str(exc), status=403)
    except services.ApprovalConflict as exc:
        if not ApprovalRequest.objects.filter(pk=pk).exists():
            raise Http404(str(exc)) from exc
        return _render_request_page(request, _load_request(pk), error=str(exc), status=409)
    messages.success(request, f"Resubmitted request #{item.pk} for round {item.round}; the checks run again.")
    return redirect(_safe_next(request, reverse("approvals:request", args=[item.pk])))


# --- my requests ---------------------------------------------------------------------------------------------


@login_required
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    if state not in ApprovalRequest.State.values:
        state = ""
    decisions = Decision.objects.select_related("reviewer").order_by("round", "stage_index")
    requests = selectors.my_requests(user=request.user, state=state).prefetch_related(
        Prefetch("decisions", queryset=decisions)
    )
    page = _page(request, requests)
    rows = []
    for item in page:
        made = list(item.decisions.all())
        rows.append({"req": item, "last_decision": made[-1] if made else None})
    context = {
        "page": page,
        "rows": rows,
        "state": state,
        "states": ApprovalRequest.State.choices,
        "open_states": OPEN_STATES,
        "query": _query_without_page(request),
        "next_url": request.get_full_path(),
    }
    return render(request, "approvals/mine.html", context)


# --- starting requests from the catalog ----------------------------------------------------------------------


def _entity_url(entity: Agent | Tool) -> str:
    kind = "agent" if isinstance(entity, Agent) else "tool"
    return reverse(f"catalog:{kind}", args=[entity.name])


def _service_problem(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict):
        return " ".join(f"{field.replace('_', ' ').capitalize()} {' '.join(msgs)}" for field, msgs in errors.items())
    return str(exc)


@login_required
@require_POST
def submit(request: HttpRequest) -> HttpResponse:
    form = SubmitForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The submission was incomplete; use the form on the agent's or tool's page.")
        return redirect("catalog:index")
    name = form.cleaned_data["name"]
    loader = (
        catalog_selectors.agent_detail
        if form.cleaned_data["kind"] == ApprovalRequest.Kind.AGENT_ONBOARDING
        else catalog_selectors.tool_detail
    )
    try:
        entity: Agent | Tool = loader(name=name)
    except ObjectDoesNotExist as exc:
        raise Http404(f"Nothing called {name!r} is in the catalog.") from exc
    try:
        item = submitting.request_submit(
            actor=_actor(request),
            kind=form.cleaned_data["kind"],
            agent=entity if isinstance(entity, Agent) else None,
            tool=entity if isinstance(entity, Tool) else None,
            justification=form.cleaned_data["justification"],
            attest=form.cleaned_data["attest"],
        )
    except services.ApprovalPermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except (services.ApprovalError, services.ApprovalConflict) as exc:
        messages.error(request, _service_problem(exc))
        return redirect(_entity_url(entity))
    messages.success(request, f"Submitted {entity.name} for onboarding as request #{item.pk}; the checks are running.")
    return redirect("approvals:request", item.pk)


@login_required
@require_POST
def request_grant(request: HttpRequest) -> HttpResponse:
    form = GrantRequestForm(request.POST)
    if not form.is_valid():
        agent_name = form.cleaned_data.get("agent")
        messages.error(request, "Give the tool's name and an environment.")
        return redirect("catalog:agent", agent_name) if agent_name else redirect("catalog:index")
    data = form.cleaned_data
    try:
        agent = catalog_selectors.agent_detail(name=data["agent"])
    except ObjectDoesNotExist as exc:
        raise Http404(f"There is no agent called {data['agent']!r}.") from exc
    try:
        tool = catalog_selectors.tool_detail(name=data["tool"])
    except ObjectDoesNotExist:
        messages.error(request, f"There is no tool called {data['tool']!r} in the catalog; use its catalog name.")
        return redirect(_entity_url(agent))
    actor = _actor(request)
    try:
        item = submitting.grant_request_submit(
            actor=actor,
            agent=agent,
            tool=tool,
            environment=data["environment"],
            justification=data["justification"],
            attest=data["attest"],
        )
    except (catalog_services.CatalogPermissionError, services.ApprovalPermissionError) as exc:
        raise PermissionDenied(str(exc)) from exc
    except (catalog_services.CatalogError, services.ApprovalError, services.ApprovalConflict) as exc:
        messages.error(request, _service_problem(exc))
        return redirect(_entity_url(agent))
    messages.success(request, f"Requested {tool.name} in {data['environment']} for {agent.name} as request #{item.pk}.")
    return redirect("approvals:request", item.pk)


def entity_panels(page: EntityPage) -> list[dict[str, Any]]:
    """The approval status of an agent or tool, the forms that start its requests, and its active grants."""
    entity = page.entity
    requests = selectors.page_requests(page)
    # An open autonomy change (shown in the runtime panel) does not stop the agent's own onboarding.
    open_request = next(
        (item for item in requests if item.is_open and item.kind != ApprovalRequest.Kind.AUTONOMY_CHANGE), None
    )
    can_request = page.access.maintains_owner
    kind = ApprovalRequest.Kind.AGENT_ONBOARDING if page.is_agent else ApprovalRequest.Kind.TOOL_ONBOARDING
    return [
        {
            "template": "approvals/panels.html#entity",
            "entity": entity,
            "is_agent": page.is_agent,
            "latest": requests[0] if requests else None,
            "open_request": open_request,
            "submit_form": SubmitForm(initial={"kind": kind, "name": entity.name}) if can_request else None,
            "can_request_grant": can_request and page.is_agent,
            "grants": selectors.active_grants_for(entity=entity),
            "hints_attestation": None if page.is_agent else tool_current_attestation(entity),
            "now": timezone.now(),
        }
    ]


def team_panels(team: Team, user: AbstractBaseUser | AnonymousUser) -> list[dict[str, Any]]:
    requests = list(selectors.open_requests_for_team(team=team)[: TEAM_OPEN_REQUESTS + 1])
    return [
        {
            "template": "approvals/panels.html#team",
            "team": team,
            "requests": requests[:TEAM_OPEN_REQUESTS],
            "more": len(requests) > TEAM_OPEN_REQUESTS,
        }
    ]


# --- notification preferences --------------------------------------------------------------------------------


def _team_forms(teams: QuerySet[Team], posted: tuple[int, TeamWebhookForm] | None) -> list[dict[str, Any]]:
    forms = []
    for team in teams:
        if posted is not None and posted[0] == team.pk:
            form = posted[1]
        else:
            preference = preferences.preference_for_team(team=team)
            form = TeamWebhookForm(
                prefix=f"team-{team.pk}",
                initial={"url": team.chat_webhook_url, "chat_enabled": preference.chat_enabled},
            )
        forms.append({"team": team, "form": form})
    return forms


@login_required
@require_http_methods(["GET", "POST"])
def preferences_page(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    teams = catalog_selectors.user_teams(user=actor, maintainer_only=True).order_by("name")
    user_form: UserPreferenceForm | None = None
    posted_team: tuple[int, TeamWebhookForm] | None = None
    status = 200
    if request.method == "POST" and "team" in request.POST:
        team = teams.filter(pk=request.POST.get("team") or 0).first()
        if team is None:
            raise PermissionDenied("You can change the chat of the teams you maintain only.")
        form = TeamWebhookForm(request.POST, prefix=f"team-{team.pk}")
        if form.is_valid():
            try:
                preferences.team_webhook_update(
                    actor=actor, team=team, url=form.cleaned_data["url"], chat_enabled=form.cleaned_data["chat_enabled"]
                )
            except services.ApprovalPermissionError as exc:
                raise PermissionDenied(str(exc)) from exc
            except services.ApprovalError as exc:
                form.add_service_errors(exc.errors)
            else:
                messages.success(request, f"Saved the chat settings of team {team.name}.")
                return redirect("approvals:preferences")
        posted_team, status = (team.pk, form), 400
    elif request.method == "POST":
        user_form = UserPreferenceForm(request.POST)
        if user_form.is_valid():
            try:
                preferences.preference_update_user(
                    user=actor,
                    email_enabled=user_form.cleaned_data["email_enabled"],
                    muted_events=user_form.cleaned_data["muted_events"],
                )
            except services.ApprovalError as exc:
                user_form.add_service_errors(exc.errors)
            else:
                messages.success(request, "Saved your notification preferences.")
                return redirect("approvals:preferences")
        status = 400
    if user_form is None:
        preference = preferences.preference_for_user(user=actor)
        user_form = UserPreferenceForm(
            initial={"email_enabled": preference.email_enabled, "muted_events": preference.muted_events}
        )
    context = {"user_form": user_form, "team_forms": _team_forms(teams, posted_team)}
    return render(request, "approvals/preferences.html", context, status=status)
