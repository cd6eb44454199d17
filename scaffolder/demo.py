"""Demo golden-path pair for `make run`: an MCP server and an agent that uses it, both scaffolded by the portal,
onboarded and approved, with an approved grant, so the MCP registry (`/v0.1/servers`) lists a server.

The demo server uses the stdio transport: nothing has to run for its onboarding checks to pass.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.test.utils import override_settings

from approvals import decisions
from approvals import services as approvals
from approvals.models import ApprovalRequest
from catalog.models import Agent, Tool
from portal.celery import app
from scaffolder import services
from scaffolder.models import GoldenPathTemplate, ScaffoldRun
from scaffolder.registering import templates_register_builtin

SERVER = "items-mcp"
AGENT = "items-assistant"
OWNER = "platform"
SERVER_VALUES = {
    "name": SERVER,
    "description": "Look up work items (demo MCP server from the mcp-server golden path).",
    "owner": OWNER,
    "transport": "stdio",
    "data_class": "internal",
}
AGENT_VALUES = {
    "name": AGENT,
    "description": "Answers questions about work items through the items-mcp server.",
    "owner": OWNER,
    "agent_type": "business",
    "data_class": "internal",
    "autonomy_level": 2,
    "tools": [SERVER],
}


def _scaffold(actor: Any, template: str, values: dict[str, Any]) -> ScaffoldRun:
    run = services.run_start(
        actor=actor, template=GoldenPathTemplate.objects.get(name=template), values=values, enqueue=False
    )
    return services.run_execute(run_id=run.pk) or run


def _approve_open_requests(run: ScaffoldRun, reviewers: list[Any], stdout: Any) -> None:
    """Each stage is decided by the first demo person its policy accepts (separation of duties included)."""
    for request in ApprovalRequest.objects.filter(pk__in=run.approval_request_ids).order_by("pk"):
        decided = True
        while request.state == ApprovalRequest.State.IN_REVIEW and decided:
            decided = False
            for reviewer in reviewers:
                try:
                    decisions.request_decide(
                        actor=reviewer, request_id=request.pk, outcome="approve", comment="Golden-path demo: reviewed."
                    )
                except (approvals.ApprovalPermissionError, approvals.ApprovalConflict, approvals.ApprovalError):
                    continue
                decided = True
                request.refresh_from_db()
                break
        stdout.write(f"scaffolder demo: {request.get_kind_display()} #{request.pk} {request.get_state_display()}")


def seed_golden_path_pair(stdout: Any) -> None:
    if Tool.objects.filter(name=SERVER).exists() or Agent.objects.filter(name=AGENT).exists():
        stdout.write("scaffolder demo: golden-path pair already present, left alone")
        return
    if GoldenPathTemplate.objects.filter(name__in=["mcp-server", "python-agent"]).count() < 2:
        templates_register_builtin()  # migrate records them, except where that is switched off (tests)
    users = get_user_model().objects
    admin = users.get(username="admin")
    # The owner's maintainer attests; then security, data and business owners approve, as each tier's policy asks.
    reviewers = [admin, *(users.get(username=name) for name in ("sarah", "sam", "dora", "olga"))]
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the onboarding checks run now, not on the worker `make run` starts later
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            for template, values in (("mcp-server", SERVER_VALUES), ("python-agent", AGENT_VALUES)):
                run = _scaffold(admin, template, values)
                if run.state != ScaffoldRun.State.SUCCEEDED:
                    stdout.write(f"scaffolder demo: {template} run #{run.pk} failed: {run.error}")
                    return
                _approve_open_requests(run, reviewers, stdout)
    finally:
        app.conf.task_always_eager = previous
