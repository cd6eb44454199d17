"""Catalog pages. Each view parses input, calls one selector or service, and renders a page or, for htmx, a partial.

Reading works without JavaScript (links and GET forms); htmx only swaps the catalog results in place.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig, TooManyFilesSent
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from catalog import selectors, services
from catalog.formats.parallel import in_this_process
from catalog.forms import AgentForm, CatalogEntityForm, ImportForm, ToolForm
from catalog.import_runs import import_run_queue, import_run_visible, import_runs_inline
from catalog.importing import import_inputs
from catalog.models import Agent, ImportRun, Team, Tool
from catalog.panels import EntityPage
from catalog.risk import MAX_SCORE
from portal.errors import Conflict
from portal.roles import user_is_platform_admin

SORT_CHOICES = (
    ("", "Best match"),
    ("name", "Name"),
    ("-risk", "Highest risk first"),
    ("risk", "Lowest risk first"),
    ("-updated", "Recently updated"),
)
# Room for the import form's other fields and the multipart framing on top of the accepted upload size, so a
# request far over the limit is refused before its body is read at all.
MULTIPART_OVERHEAD = 64 * 1024


def _owner_teams(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Team]:
    return selectors.owner_choices(user=user)


def _actor(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    assert isinstance(user, AbstractBaseUser), "the view is login_required"
    return user


def _wants_partial(request: HttpRequest) -> bool:
    # A history restore after a cache miss needs the whole page, not the fragment.
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def _active_filters(page: selectors.CatalogPage) -> list[dict[str, str]]:
    labels = {name: label for name, label, _ in page.facets} or dict(selectors.FACETS)
    value_labels = {(name, value.value): value.label for name, _, values in page.facets for value in values}
    active = [
        {
            "name": name,
            "label": labels.get(name, name),
            "value": value,
            "value_label": value_labels.get((name, value), value),
        }
        for name, values in page.query.filters.items()
        for value in values
    ]
    if page.query.tag:
        active.append({"name": "tag", "label": "Tag", "value": page.query.tag, "value_label": page.query.tag})
    return active


@login_required
@require_GET
def catalog_index(request: HttpRequest) -> HttpResponse:
    query = selectors.CatalogQuery.from_params(request.GET)
    page = selectors.catalog_search(user=request.user, query=query)
    context: dict[str, Any] = {
        "page": page,
        "query": query,
        "rows": [{"entry": e, "explanation": e.risk_explanation} for e in page.entries],
        "active_filters": _active_filters(page),
        "sort_choices": SORT_CHOICES,
        "sort_param": request.GET.get("sort", ""),
    }
    if _wants_partial(request):
        response = render(request, "catalog/index.html#results", context)
    else:
        context["can_add"] = _owner_teams(request.user).exists()
        response = render(request, "catalog/index.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _load(loader: Any, name: str, **kwargs: Any) -> Any:
    try:
        return loader(name=name, **kwargs)
    except ObjectDoesNotExist as exc:
        raise Http404(f"Nothing called {name!r} is in the catalog.") from exc


def _extra_panels(hook: str, *subject: Any) -> list[Any]:
    """Panels other apps contribute to a page through an optional AppConfig method, e.g. `entity_panels(page)`
    (a catalog.panels.EntityPage) or `team_panels(team, user)`, each returning dicts with a `template` to include
    (given the dict as `panel`). The catalog stays unaware of the apps built on it."""
    panels: list[Any] = []
    for config in apps.get_app_configs():
        contribute = getattr(config, hook, None)
        if contribute is not None:
            panels.extend(contribute(*subject))
    return panels


def _entity_context(request: HttpRequest, entity: Agent | Tool) -> dict[str, Any]:
    page = EntityPage(entity=entity, user=request.user, access=services.entity_access(request.user, entity))
    return {
        "entity": entity,
        "can_edit": page.access.can_edit,
        "history": selectors.entity_history(entity=entity),
        "risk_max_score": MAX_SCORE,
        "extra_panels": _extra_panels("entity_panels", page),
    }


@login_required
@require_GET
def agent_page(request: HttpRequest, name: str) -> HttpResponse:
    agent = _load(selectors.agent_page_detail, name, user=request.user)
    context = _entity_context(request, agent)
    context["relations"] = selectors.agent_relations(agent=agent)
    return render(request, "catalog/agent_detail.html", context)


@login_required
@require_GET
def tool_page(request: HttpRequest, name: str) -> HttpResponse:
    tool = _load(selectors.tool_page_detail, name, user=request.user)
    return render(request, "catalog/tool_detail.html", _entity_context(request, tool))


@login_required
@require_GET
def team_page(request: HttpRequest, name: str) -> HttpResponse:
    team = _load(selectors.team_detail, name)
    owned = selectors.team_owned(team=team)
    context = {
        "team": team,
        "agents": owned["agents"],
        "tools": owned["tools"],
        "memberships": team.memberships.all(),
        "can_add": services.can_create_for(request.user, team),
        "extra_panels": _extra_panels("team_panels", team, request.user),
    }
    return render(request, "catalog/team_detail.html", context)


def _entity_form(request: HttpRequest, *, kind: str, instance: Agent | Tool | None) -> HttpResponse:
    form_class: type[CatalogEntityForm] = AgentForm if kind == "agent" else ToolForm
    owner_teams = _owner_teams(request.user)
    if instance is not None and not services.can_edit(request.user, instance):
        raise PermissionDenied(f"Only maintainers of team {instance.owner.name} or platform admins can edit it.")
    if instance is None and not owner_teams.exists():
        raise PermissionDenied(f"Only maintainers of a team or platform admins can add {kind}s.")
    initial = {"owner": request.GET.get("owner", "")} if instance is None else None
    form = form_class(request.POST or None, owner_teams=owner_teams, instance=instance, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            entity = _save(kind, request.user, instance, form.service_data())
        except services.CatalogPermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.CatalogError as exc:
            form.add_service_errors(exc.errors)
        except Conflict as exc:  # another autonomy level already waits for approval
            form.add_service_errors({"autonomy_level": [str(exc)]})
        else:
            verb = "added" if instance is None else "saved"
            messages.success(request, f"{kind.capitalize()} “{entity.name}” {verb}.")
            for held in getattr(entity, "held_changes", []):
                messages.warning(request, held.message)
            return redirect(f"catalog:{kind}", entity.name)
    return render(request, "catalog/entity_form.html", {"form": form, "kind": kind, "entity": instance})


def _save(kind: str, actor: Any, instance: Agent | Tool | None, data: dict[str, Any]) -> Agent | Tool:
    if kind == "agent":
        if instance is None:
            return services.agent_create(actor=actor, data=data)
        assert isinstance(instance, Agent)
        return services.agent_update(actor=actor, agent=instance, data=data)
    if instance is None:
        return services.tool_create(actor=actor, data=data)
    assert isinstance(instance, Tool)
    return services.tool_update(actor=actor, tool=instance, data=data)


@login_required
@require_http_methods(["GET", "POST"])
def agent_create(request: HttpRequest) -> HttpResponse:
    return _entity_form(request, kind="agent", instance=None)


@login_required
@require_http_methods(["GET", "POST"])
def agent_edit(request: HttpRequest, name: str) -> HttpResponse:
    return _entity_form(request, kind="agent", instance=_load(selectors.agent_detail, name))


@login_required
@require_http_methods(["GET", "POST"])
def tool_create(request: HttpRequest) -> HttpResponse:
    return _entity_form(request, kind="tool", instance=None)


@login_required
@require_http_methods(["GET", "POST"])
def tool_edit(request: HttpRequest, name: str) -> HttpResponse:
    return _entity_form(request, kind="tool", instance=_load(selectors.tool_detail, name))


def _import_form(request: HttpRequest, data: Any = None, files: Any = None) -> ImportForm:
    return ImportForm(
        data,
        files,
        owner_teams=_owner_teams(request.user),
        max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        can_adopt=user_is_platform_admin(request.user),
    )


def _import_refused(request: HttpRequest, problem: str) -> HttpResponse:
    context = {"form": _import_form(request), "report": None, "refused": problem}
    return render(request, "catalog/import.html", context, status=413)


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    """Reads the upload before the CSRF check, so an oversized one gets a clear answer instead of a bare 400.
    Refusing changes nothing; everything else goes through the CSRF-protected view below."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    too_big = (
        f"The upload is larger than {filesizeformat(limit)}, the most accepted at once. Split it into several imports."
    )
    if request.method == "POST":
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit + MULTIPART_OVERHEAD:
            return _import_refused(request, too_big)
        try:
            request.POST  # noqa: B018 - parse the body here, where its size errors can be answered
            request.FILES  # noqa: B018
        except RequestDataTooBig:
            return _import_refused(request, too_big)
        except TooManyFilesSent:
            return _import_refused(
                request, f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files are accepted at once."
            )
    return _import_checked(request)


@csrf_protect
def _import_checked(request: HttpRequest) -> HttpResponse:
    report = None
    if request.method == "POST":
        form = _import_form(request, request.POST, request.FILES)
        if form.is_valid():
            owner = form.cleaned_data["default_owner"]
            options = {
                "actor": _actor(request),
                "default_owner": owner.name if owner is not None else None,
                "dry_run": form.cleaned_data["dry_run"],
                "adopt": form.cleaned_data.get("adopt", False),
            }
            inputs = form.inputs()
            if not import_runs_inline(inputs):
                run = import_run_queue(inputs=inputs, **options)
                return redirect("catalog:import-run", run.pk)
            with in_this_process():
                report = import_inputs(inputs, **options)
    else:
        form = _import_form(request)
    return render(request, "catalog/import.html", {"form": form, "report": report})


@login_required
@require_GET
def import_run_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A queued import's phase; htmx asks again every second until it ends, then the page shows its report."""
    run = ImportRun.objects.filter(pk=pk).first()
    if run is None or not import_run_visible(run, _actor(request)):
        raise Http404("No such import run.")
    report = {**run.report, "outcomes": run.report.get("entities", [])} if run.report else None
    template = "catalog/import_run.html#status" if request.htmx else "catalog/import_run.html"
    return render(request, template, {"run": run, "report": report})
