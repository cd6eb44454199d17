"""Demo requests for `make run`: one in every state, so every screen has something to show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalRequest
from catalog import services as catalog
from catalog.models import Agent, Tool
from portal.celery import app


def _user(username: str) -> Any:
    return get_user_model().objects.get(username=username)


def _eager_submit(**kwargs: Any) -> ApprovalRequest:
    with transaction.atomic():
        request = services.request_submit(**kwargs)
    request.refresh_from_db()
    return request


def _attest(request: ApprovalRequest, *candidates: Any) -> None:
    """Attested by the first candidate who may (never the requester: see services._attestation_refusal)."""
    request.refresh_from_db()
    for user in candidates:
        if services.decision_refusal(user, request) is None:
            services.request_attest(actor=user, request_id=request.pk)
            return


def seed_requests(stdout: Any) -> None:
    if ApprovalRequest.objects.exists():
        stdout.write("approvals demo: requests already present, left alone")
        return
    admin, alice, bob, sam = (_user(name) for name in ("admin", "alice", "bob", "sam"))
    tools = {tool.name: tool for tool in Tool.objects.all()}
    agents = {agent.name: agent for agent in Agent.objects.all()}
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            # Approved: a low-tier tool, automatic after checks with the owner's attestation.
            catalog.tool_attest_annotations(tool=tools["status-page-api"])
            status_page = _eager_submit(actor=admin, kind="tool_onboarding", tool=tools["status-page-api"])
            _attest(status_page, alice, bob, sam)
            # In review: a medium-tier MCP server waiting for a security reviewer (sam).
            catalog.tool_attest_annotations(tool=tools["github-mcp"])
            github = _eager_submit(
                actor=admin, kind="tool_onboarding", tool=tools["github-mcp"], justification="Needed by pr-reviewer."
            )
            # Approved grant: pr-reviewer may use the GitHub MCP server.
            services.request_decide(
                actor=sam, request_id=github.pk, outcome="approve", comment="Scopes are delegated and short-lived."
            )
            pr_grant = services.grant_request_submit(
                actor=admin,
                agent=agents["pr-reviewer"],
                tool=tools["github-mcp"],
                capability_names=["list_issues", "get_pull_request", "add_comment"],
            )
            pr_grant.refresh_from_db()
            if pr_grant.current_role == services.OWNER_ATTESTATION_ROLE:
                _attest(pr_grant, alice, bob, sam)
            elif pr_grant.state == "in_review":
                services.request_decide(actor=sam, request_id=pr_grant.pk, outcome="approve", comment="Fine for CI.")
            catalog.tool_attest_annotations(tool=tools["jira-mcp"])
            _eager_submit(actor=admin, kind="tool_onboarding", tool=tools["jira-mcp"])
            # High tier, first stage done, waiting for a data owner (dora) from another team.
            catalog.tool_attest_annotations(tool=tools["warehouse-sql"])
            warehouse = _eager_submit(actor=bob, kind="tool_onboarding", tool=tools["warehouse-sql"])
            if warehouse.state == "in_review":
                services.request_decide(
                    actor=sam, request_id=warehouse.pk, outcome="approve", comment="Read-only; queries are logged."
                )
            # Rejected: a refund API that moves money with an admin key.
            refunds = _eager_submit(actor=alice, kind="tool_onboarding", tool=tools["stripe-refunds"])
            if refunds.state == "in_review":
                services.request_decide(
                    actor=_user("sarah"),
                    request_id=refunds.pk,
                    outcome="reject",
                    comment="Admin-scoped, long-lived key: use a restricted key per agent first.",
                )
            # Changes requested: versions not pinned ("latest").
            _eager_submit(actor=admin, kind="tool_onboarding", tool=tools["feature-flags"])
            # Withdrawn, then a draft, then one still checking.
            withdrawn = _eager_submit(actor=admin, kind="agent_onboarding", agent=agents["incident-responder"])
            services.request_withdraw(actor=admin, request_id=withdrawn.pk)
            services.request_submit(actor=alice, kind="agent_onboarding", agent=agents["refund-assistant"], draft=True)
            # Expired: an old request nobody decided.
            old = _eager_submit(actor=bob, kind="agent_onboarding", agent=agents["forecast-analyst"])
            # Backdate it (demo only) so the beat's stale-request scan expires it as it would after 30 days.
            ApprovalRequest.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - timedelta(days=31))
            services.expire_stale_requests()
        app.conf.task_always_eager = False
        # Still checking: its checks are queued for the worker that `make run` starts.
        services.request_submit(actor=admin, kind="agent_onboarding", agent=agents["pr-reviewer"])
    finally:
        app.conf.task_always_eager = previous
    states = sorted(set(ApprovalRequest.objects.values_list("state", flat=True)))
    stdout.write(f"approvals demo: {ApprovalRequest.objects.count()} requests in states {', '.join(states)}")
