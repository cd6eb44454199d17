"""Demo requests for `make run`: one in every state, so every screen has something to show, and the integrity story:
github-mcp approved after a security reviewer attested its hints (its tier dropped from critical to high), and
warehouse-sql sent back to checks by a change of its facts after its first review stage."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from approvals import attestation, decisions, scans, services, submitting
from approvals.models import ApprovalRequest
from catalog import services as catalog
from catalog.models import Agent, Tool
from portal.celery import app
from portal.context import acting_as, actor_for_user


def _user(username: str) -> Any:
    return get_user_model().objects.get(username=username)


def _eager_submit(**kwargs: Any) -> ApprovalRequest:
    with transaction.atomic():
        request = submitting.request_submit(**kwargs)
    request.refresh_from_db()
    return request


def _attest(request: ApprovalRequest, *candidates: Any) -> None:
    """Attested by the first candidate who may (never the requester: see services._attestation_refusal)."""
    request.refresh_from_db()
    for user in candidates:
        if decisions.decision_refusal(user, request) is None:
            decisions.request_attest(actor=user, request_id=request.pk)
            return


def _attest_hints(reviewer: Any, tool: Tool, comment: str = "") -> None:
    """A security reviewer attests the tool's hints (the demo tools are stdio or HTTP APIs: nothing live to ask)."""
    tool.refresh_from_db()
    attestation.hints_attest(actor=reviewer, tool=tool, capabilities_hash=tool.capabilities_hash, comment=comment)
    tool.refresh_from_db()


def seed_requests(stdout: Any) -> None:
    if ApprovalRequest.objects.exists():
        stdout.write("approvals demo: requests already present, left alone")
        return
    admin, alice, bob, sam, sarah, dora = (_user(name) for name in ("admin", "alice", "bob", "sam", "sarah", "dora"))
    tools = {tool.name: tool for tool in Tool.objects.all()}
    agents = {agent.name: agent for agent in Agent.objects.all()}
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            # Approved: a low-tier tool, automatic after checks with the owner's attestation. Sam (security)
            # attested its read-only hints first; unattested hints count as destructive and open-world.
            _attest_hints(sam, tools["status-page-api"])
            status_page = _eager_submit(actor=admin, kind="tool_onboarding", tool=tools["status-page-api"])
            _attest(status_page, alice, bob, sam)
            # Approved after attested hints: github-mcp is submitted critical (its hints unattested); sam attests
            # them in review, which is a change of facts: round 2 re-runs the checks at high; sam and dora approve.
            github = _eager_submit(
                actor=admin, kind="tool_onboarding", tool=tools["github-mcp"], justification="Needed by pr-reviewer."
            )
            _attest_hints(sam, tools["github-mcp"], comment="Hints match the server's published tool list.")
            for reviewer, comment in ((sam, "Scopes are delegated and short-lived."), (dora, "No customer data.")):
                github.refresh_from_db()
                if github.state == "in_review":
                    decisions.request_decide(
                        actor=reviewer,
                        request_id=github.pk,
                        outcome="approve",
                        comment=comment,
                        facts_fingerprint=github.facts_fingerprint,
                    )
            # Approved grant: pr-reviewer may use three capabilities of the GitHub MCP server (and nothing else).
            pr_grant = submitting.grant_request_submit(
                actor=admin,
                agent=agents["pr-reviewer"],
                tool=tools["github-mcp"],
                capability_names=["list_issues", "get_pull_request", "add_comment"],
            )
            pr_grant.refresh_from_db()
            if pr_grant.current_role == services.OWNER_ATTESTATION_ROLE:
                _attest(pr_grant, alice, bob, sam)
            elif pr_grant.state == "in_review":
                decisions.request_decide(
                    actor=sam,
                    request_id=pr_grant.pk,
                    outcome="approve",
                    comment="Fine for CI.",
                    facts_fingerprint=pr_grant.facts_fingerprint,
                )
            _attest_hints(sarah, tools["jira-mcp"])
            _eager_submit(actor=admin, kind="tool_onboarding", tool=tools["jira-mcp"])
            # Sent back to checks by a fact change: the security review of warehouse-sql was done when bob, its
            # owner, bumped its version; round 2 re-ran the checks and the security review counts no more.
            _attest_hints(sam, tools["warehouse-sql"])
            warehouse = _eager_submit(actor=bob, kind="tool_onboarding", tool=tools["warehouse-sql"])
            if warehouse.state == "in_review":
                decisions.request_decide(
                    actor=sam,
                    request_id=warehouse.pk,
                    outcome="approve",
                    comment="Read-only; queries are logged.",
                    facts_fingerprint=warehouse.facts_fingerprint,
                )
            with acting_as(actor_for_user(bob)):  # type: ignore[arg-type]
                catalog.tool_update(actor=bob, tool=tools["warehouse-sql"], data={"version": "3.2.0"})
            # Rejected: a refund API that moves money with an admin key.
            refunds = _eager_submit(actor=alice, kind="tool_onboarding", tool=tools["stripe-refunds"])
            if refunds.state == "in_review":
                decisions.request_decide(
                    actor=_user("sarah"),
                    request_id=refunds.pk,
                    outcome="reject",
                    comment="Admin-scoped, long-lived key: use a restricted key per agent first.",
                )
            # Changes requested: versions not pinned ("latest").
            _eager_submit(actor=admin, kind="tool_onboarding", tool=tools["feature-flags"])
            # Withdrawn, then a draft, then one still checking.
            withdrawn = _eager_submit(actor=admin, kind="agent_onboarding", agent=agents["incident-responder"])
            decisions.request_withdraw(actor=admin, request_id=withdrawn.pk)
            submitting.request_submit(
                actor=alice, kind="agent_onboarding", agent=agents["refund-assistant"], draft=True
            )
            # Expired: an old request nobody decided.
            old = _eager_submit(actor=bob, kind="agent_onboarding", agent=agents["forecast-analyst"])
            # Backdate it (demo only) so the beat's stale-request scan expires it as it would after 30 days.
            ApprovalRequest.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - timedelta(days=31))
            scans.expire_stale_requests()
        app.conf.task_always_eager = False
        # Still checking: its checks are queued for the worker that `make run` starts.
        submitting.request_submit(actor=admin, kind="agent_onboarding", agent=agents["pr-reviewer"])
    finally:
        app.conf.task_always_eager = previous
    states = sorted(set(ApprovalRequest.objects.values_list("state", flat=True)))
    stdout.write(f"approvals demo: {ApprovalRequest.objects.count()} requests in states {', '.join(states)}")
