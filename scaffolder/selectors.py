"""Scaffolder reads: templates, runs (each person sees their own; platform admins see all) and form choices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Prefetch, QuerySet
from django.urls import reverse

from approvals.models import ApprovalRequest, CheckRun
from catalog import selectors as catalog_selectors
from catalog.models import Tool
from portal.roles import user_is_platform_admin
from portal.types import User
from scaffolder.models import GoldenPathTemplate, RunStep, ScaffoldRun, TemplateVersion

# Tools a new agent may ask for: everything in the catalog that is not on its way out.
REQUESTABLE_TOOL_EXCLUDED = (Tool.Status.REJECTED, Tool.Status.DEPRECATED)


def template_list(*, user: User | AnonymousUser) -> QuerySet[GoldenPathTemplate]:
    return (
        GoldenPathTemplate.objects.filter(enabled=True, latest__isnull=False)
        .select_related("latest")
        .defer("latest__files")  # the template's own files: loaded only when rendering
    )


def template_detail(*, name: str) -> GoldenPathTemplate:
    versions = TemplateVersion.objects.only(
        "pk", "template_id", "version", "git_commit", "content_hash", "created_at"
    ).order_by("-created_at")
    return (
        GoldenPathTemplate.objects.filter(enabled=True, latest__isnull=False)
        .select_related("latest")
        .defer("latest__files")
        .prefetch_related(Prefetch("versions", queryset=versions))
        .get(name=name)
    )


def run_list(*, user: User | AnonymousUser) -> QuerySet[ScaffoldRun]:
    runs = ScaffoldRun.objects.select_related("template_version__template", "requester", "agent", "tool").defer(
        "archive", "template_version__files"
    )
    if not user.is_authenticated:
        return runs.none()
    if user_is_platform_admin(user):
        return runs
    return runs.filter(requester_id=user.pk)


def run_detail(*, user: User | AnonymousUser, pk: int) -> ScaffoldRun:
    """Raises ScaffoldRun.DoesNotExist when the run is not there or not visible to ``user``."""
    steps = RunStep.objects.order_by("position")
    return run_list(user=user).prefetch_related(Prefetch("steps", queryset=steps)).get(pk=pk)


@dataclass(frozen=True)
class RunRequest:
    """An approval request a run filed, with its latest round of checks (what the run page shows)."""

    request: ApprovalRequest
    checks: list[CheckRun]

    @property
    def failed_checks(self) -> list[CheckRun]:
        return [check for check in self.checks if check.status in (CheckRun.Status.FAILED, CheckRun.Status.ERROR)]

    @property
    def is_checking(self) -> bool:
        return self.request.state == ApprovalRequest.State.CHECKING


def run_requests(*, run: ScaffoldRun) -> list[RunRequest]:
    """The onboarding and grant requests the run filed, in the order filed, each with its current round's checks."""
    requests = ApprovalRequest.objects.filter(pk__in=run.approval_request_ids).order_by("pk")
    checks = CheckRun.objects.filter(request__in=requests).only("request_id", "round", "name", "status", "summary")
    by_request: dict[int, list[CheckRun]] = {}
    rounds = {request.pk: request.round for request in requests}
    for check in checks:
        if check.round == rounds.get(check.request_id):
            by_request.setdefault(check.request_id, []).append(check)
    return [RunRequest(request=request, checks=by_request.get(request.pk, [])) for request in requests]


def run_archive(*, user: User | AnonymousUser, pk: int) -> tuple[str, bytes] | None:
    row = run_list(user=user).filter(pk=pk).values_list("archive_name", "archive").first()
    if row is None or row[1] is None:
        return None
    return row[0], bytes(row[1])


def owner_choices(*, user: User | AnonymousUser) -> list[tuple[str, str]]:
    return [(team.name, team.display_name) for team in catalog_selectors.owner_choices(user=user)]


def tool_choices(*, user: User | AnonymousUser) -> list[tuple[str, str]]:
    tools = catalog_selectors.tool_list(user=user).exclude(status__in=REQUESTABLE_TOOL_EXCLUDED)
    return [(name, f"{name} ({Tool.Status(status).label})") for name, status in tools.values_list("name", "status")]


def dashboard_panels(*, user: User | AnonymousUser) -> list[dict[str, Any]]:
    if not user.is_authenticated:
        return []
    recent = list(run_list(user=user).filter(requester_id=user.pk)[:5])
    return [
        {
            "title": "Golden paths",
            "value": template_list(user=user).count(),
            "rows": [
                {
                    "label": f"Run #{run.pk}: {run.project_name or run.template_version.template.name}",
                    "detail": run.state,
                    "url": reverse("scaffolder:run", args=[run.pk]),
                }
                for run in recent
            ],
            "url": reverse("scaffolder:index"),
            "link_label": "Create from a golden path",
        }
    ]
