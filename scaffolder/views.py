"""Create pages: pick a golden path, fill the generated form (validated live, field by field), preview, run.

Every action is a real form first; htmx adds live validation and the run page's live log on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from scaffolder import selectors, services
from scaffolder.forms import PUBLISHER_FIELD, ParametersForm
from scaffolder.models import GoldenPathTemplate, ScaffoldRun
from scaffolder.publishers import available_publishers

PREVIEW_TEXT_LIMIT = 200_000


def _actor(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    assert isinstance(user, AbstractBaseUser), "the view is login_required"
    return user


def _template(name: str) -> GoldenPathTemplate:
    try:
        return selectors.template_detail(name=name)
    except GoldenPathTemplate.DoesNotExist as exc:
        raise Http404(f"No golden path called {name!r}.") from exc


def _form(request: HttpRequest, template: GoldenPathTemplate, data: Any = None) -> ParametersForm:
    actor = _actor(request)
    version = template.latest
    assert version is not None

    def check(values: dict[str, Any], publisher: str) -> dict[str, Any]:
        return services.run_check_values(actor=actor, version=version, values=values, publisher=publisher)

    return ParametersForm(
        data,
        schema=version.parameters_schema,
        owner_choices=selectors.owner_choices(user=actor),
        tool_choices=selectors.tool_choices(user=actor),
        publishers=available_publishers(),
        check=check,
        validate_url=reverse("scaffolder:validate", args=[template.name]),
    )


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    context = {
        "templates": selectors.template_list(user=request.user),
        "runs": selectors.run_list(user=request.user).filter(requester_id=request.user.pk)[:20],
    }
    return render(request, "scaffolder/index.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_page(request: HttpRequest, name: str) -> HttpResponse:
    """GET: the form. POST with ``_action`` = preview (dry run), run (start) or edit (back to the form)."""
    template = _template(name)
    if request.method == "GET":
        return render(
            request, "scaffolder/template_form.html", {"template": template, "form": _form(request, template)}
        )
    form = _form(request, template, request.POST)
    action = request.POST.get("_action", "preview")
    if action == "edit" or not form.is_valid():
        return render(request, "scaffolder/template_form.html", {"template": template, "form": form})
    if action == "run":
        try:
            run = services.run_start(
                actor=_actor(request),
                template=template,
                values=form.values(),
                publisher=form.cleaned_data[PUBLISHER_FIELD],
            )
        except services.ScaffoldError as exc:
            for field_name, problems in exc.errors.items():
                for problem in problems:
                    form.add_error(field_name if field_name in form.fields else None, problem)
            return render(request, "scaffolder/template_form.html", {"template": template, "form": form})
        messages.success(request, f"Run #{run.pk} started.")
        return redirect("scaffolder:run", run.pk)
    assert template.latest is not None
    files = services.preview_render(version=template.latest, values=form.values())
    context = {"template": template, "form": form, "tree": file_tree(files), "file_count": len(files)}
    return render(request, "scaffolder/preview.html", context)


@login_required
@require_POST
def validate_field(request: HttpRequest, name: str) -> HttpResponse:
    """htmx: the error list for one field (``_field``), computed from the whole form as it stands."""
    template = _template(name)
    form = _form(request, template, request.POST)
    field_name = request.POST.get("_field", "")
    if field_name not in form.fields:
        return HttpResponse(status=400)
    form.is_valid()
    return render(request, "scaffolder/_field_errors.html", {"errors": form.errors.get(field_name)})


def _run(request: HttpRequest, pk: int) -> ScaffoldRun:
    try:
        return selectors.run_detail(user=request.user, pk=pk)
    except ScaffoldRun.DoesNotExist as exc:
        raise Http404(f"No run #{pk} that you can see.") from exc


@login_required
@require_GET
def run_page(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    htmx = getattr(request, "htmx", None)
    updates = list(run.updates.select_related("from_version", "to_version"))
    requests = selectors.run_requests(run=run)
    context = {
        "run": run,
        "steps": list(run.steps.all()),
        "updates": updates,
        "requests": requests,
        "update_offer": services.update_offer(run=run),
        "polling": run.is_active
        or any(update.is_active for update in updates)
        or any(item.is_checking for item in requests),
    }
    if htmx and not htmx.history_restore_request:
        response = render(request, "scaffolder/run.html#status", context)
    else:
        response = render(request, "scaffolder/run.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_POST
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    try:
        services.run_retry(actor=_actor(request), run=run)
    except services.ScaffoldPermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.ScaffoldConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run #{run.pk} queued again from the failed step.")
    return redirect("scaffolder:run", run.pk)


@login_required
@require_POST
def run_update(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    try:
        update = services.repository_update_start(actor=_actor(request), run=run)
    except services.ScaffoldPermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.ScaffoldConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Updating the repository to {update.to_version.version} on a new branch.")
    return redirect("scaffolder:run", run.pk)


@login_required
@require_GET
def run_download(request: HttpRequest, pk: int) -> HttpResponse:
    archive = selectors.run_archive(user=request.user, pk=pk)
    if archive is None:
        raise Http404("This run has no download (yet).")
    filename, content = archive
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- preview tree ----------------------------------------------------------------------------------------------


@dataclass
class TreeNode:
    name: str
    path: str
    is_dir: bool
    size: int = 0
    text: str | None = None  # None for binary files
    children: list[TreeNode] = field(default_factory=list)


def file_tree(files: dict[str, bytes]) -> list[TreeNode]:
    """Nested folders first, then files, each level sorted by name."""
    root = TreeNode(name="", path="", is_dir=True)
    for path, content in sorted(files.items()):
        node = root
        parts = path.split("/")
        for depth, part in enumerate(parts[:-1]):
            folder = next((child for child in node.children if child.is_dir and child.name == part), None)
            if folder is None:
                folder = TreeNode(name=part, path="/".join(parts[: depth + 1]), is_dir=True)
                node.children.append(folder)
            node = folder
        try:
            text: str | None = content.decode("utf-8")[:PREVIEW_TEXT_LIMIT]
        except UnicodeDecodeError:
            text = None
        node.children.append(TreeNode(name=parts[-1], path=path, is_dir=False, size=len(content), text=text))
    _sort(root)
    return root.children


def _sort(node: TreeNode) -> None:
    node.children.sort(key=lambda child: (not child.is_dir, child.name))
    for child in node.children:
        _sort(child)
