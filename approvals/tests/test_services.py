from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone

from approvals import checks, checks_running, decisions, policies, scans, selectors, services, submitting
from approvals.models import ApprovalPolicy, ApprovalRequest, CheckRun, Decision, Notification
from catalog import services as catalog
from catalog.models import Agent, Tool, ToolGrant
from portal.audit import audit_verify_chain
from portal.models import AuditEvent
from portal.testing.servers import LocalHttpServer, McpTestServer, McpToolSpec, Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def submit(django_capture_on_commit_callbacks: Any, actor: Any, **kwargs: Any) -> ApprovalRequest:
    with django_capture_on_commit_callbacks(execute=True):
        request = submitting.request_submit(actor=actor, **kwargs)
    request.refresh_from_db()
    return request


def decide(
    django_capture_on_commit_callbacks: Any,
    actor: Any,
    request: ApprovalRequest,
    outcome: str = "approve",
    comment: str = "",
) -> ApprovalRequest:
    with django_capture_on_commit_callbacks(execute=True):
        decisions.request_decide(actor=actor, request_id=request.pk, outcome=outcome, comment=comment)
    request.refresh_from_db()
    return request


def test_medium_tool_goes_through_checks_then_one_security_review(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium")
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)

    assert request.state == "in_review", [(c.name, c.status, c.summary) for c in request.checks.all()]
    assert request.tier == "medium"
    assert request.current_role == "security-reviewer"
    assert {c.name: c.status for c in request.checks.all()} == dict.fromkeys(
        [
            "descriptor_complete",
            "owner_has_maintainer",
            "versions_pinned",
            "no_secrets",
            "endpoint_reachable",
            "risk_recomputed",
        ],
        "passed",
    )
    assert request.due_at is not None
    assert Tool.objects.get(pk=tool.pk).status == "pending_review"
    assert Notification.objects.filter(request=request, event="stage", recipient=world["reviewer"]).exists()

    request = decide(django_capture_on_commit_callbacks, world["reviewer"], request)

    assert request.state == "approved"
    assert request.approval_expires_at is not None
    assert (request.approval_expires_at - timezone.now()).days in (364, 365)
    assert Tool.objects.get(pk=tool.pk).status == "approved"
    assert any("Approved" in message.subject for message in mail.outbox)
    assert audit_verify_chain().ok


@pytest.fixture
def automatic_low_tier(world: dict[str, Any]) -> None:
    """A low-tier policy approved by the checks alone (no attestation), as a platform admin may set it."""
    policy = ApprovalPolicy.objects.get(tier="low")
    policies.policy_update(actor=world["admin"], policy=policy, data={"requires_attestation": False})


def test_the_requester_cannot_attest_their_own_request_on_submit(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="low")
    with pytest.raises(services.ApprovalError) as refused:
        submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool, attest=True)
    assert "attest" in refused.value.errors
    assert not ApprovalRequest.objects.filter(tool=tool).exists()


def test_low_tier_is_approved_on_checks_and_the_attestation_of_another_maintainer(
    world: dict[str, Any], make_tool: Any, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from catalog.teams import team_set_member

    second = make_user("otto")
    team_set_member(team=world["team"], user=second, role="maintainer")
    tool = make_tool(tier="low")
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    assert (request.state, request.current_role) == ("in_review", services.OWNER_ATTESTATION_ROLE)

    with pytest.raises(services.ApprovalPermissionError, match="own request"):
        decisions.request_attest(actor=world["owner"], request_id=request.pk)
    with pytest.raises(services.ApprovalPermissionError, match="other than the requester"):
        decisions.request_attest(actor=world["reviewer"], request_id=request.pk)
    with django_capture_on_commit_callbacks(execute=True):
        decisions.request_attest(actor=second, request_id=request.pk)

    request.refresh_from_db()
    assert (request.state, request.attested_by) == ("approved", second)
    assert not request.decisions.exists()


def test_a_single_maintainers_request_is_attested_by_a_security_reviewer_or_platform_admin(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    first = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("a", tier="low")
    )
    second = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("b", tier="low")
    )
    assert decisions.decision_refusal(world["owner"], first) is not None
    assert decisions.decision_refusal(world["member"], first) is not None

    with django_capture_on_commit_callbacks(execute=True):
        decisions.request_attest(actor=world["reviewer"], request_id=first.pk)
        decisions.request_attest(actor=world["admin"], request_id=second.pk)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.attested_by, second.state, second.attested_by) == (
        "approved", world["reviewer"], "approved", world["admin"],
    )  # fmt: skip


def test_a_single_maintainers_attestation_waits_in_the_queues_of_those_who_may_attest_it(
    world: dict[str, Any], make_tool: Any, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from approvals.selectors import review_queue
    from catalog.teams import team_set_member

    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("a", tier="low")
    )
    assert request.current_role == services.OWNER_ATTESTATION_ROLE

    def waiting_for(user: Any) -> bool:
        return review_queue(user=user).filter(pk=request.pk).exists()

    assert (waiting_for(world["reviewer"]), waiting_for(world["admin"])) == (True, True)
    assert (waiting_for(world["owner"]), waiting_for(world["member"])) == (False, False)
    second = make_user("otto")
    team_set_member(team=world["team"], user=second, role="maintainer")
    # Now another maintainer attests (decisions refuse the reviewer): the queues say the same.
    assert (waiting_for(second), waiting_for(world["reviewer"]), waiting_for(world["admin"])) == (True, False, False)
    assert decisions.decision_refusal(world["reviewer"], request) is not None


def test_the_attest_action_approves_only_an_attestation_stage(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool())
    assert request.current_role == "security-reviewer"
    with pytest.raises(services.ApprovalConflict, match="not waiting for the owner's attestation"):
        decisions.request_attest(actor=world["reviewer"], request_id=request.pk)
    request.refresh_from_db()
    assert request.state == "in_review"


def test_neither_a_draft_nor_a_resubmission_is_attested_by_its_requester(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    draft = submitting.request_submit(
        actor=world["owner"], kind="tool_onboarding", tool=make_tool(tier="low"), draft=True
    )
    with pytest.raises(services.ApprovalError) as refused:
        submitting.request_submit_draft(actor=world["owner"], request_id=draft.pk, attest=True)
    assert "attest" in refused.value.errors
    draft.refresh_from_db()
    assert (draft.state, draft.attested_by) == ("draft", None)

    tool = make_tool("bad", tier="medium", version="latest")
    sent_back = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    assert sent_back.state == "changes_requested"
    with pytest.raises(services.ApprovalError) as refused:
        submitting.request_resubmit(actor=world["owner"], request_id=sent_back.pk, attest=True)
    assert "attest" in refused.value.errors
    sent_back.refresh_from_db()
    assert (sent_back.state, sent_back.attested_by) == ("changes_requested", None)


def test_low_tier_without_attestation_waits_for_an_owner_maintainer(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any, make_user: Any
) -> None:
    tool = make_tool(tier="low")
    request = submit(django_capture_on_commit_callbacks, world["admin"], kind="tool_onboarding", tool=tool)
    assert request.state == "in_review"
    assert request.current_role == services.OWNER_ATTESTATION_ROLE
    with pytest.raises(services.ApprovalPermissionError):
        decisions.request_attest(actor=world["reviewer"], request_id=request.pk)
    with django_capture_on_commit_callbacks(execute=True):
        decisions.request_attest(actor=world["owner"], request_id=request.pk)
    request.refresh_from_db()
    assert request.state == "approved"
    assert request.attested_by == world["owner"]


def test_a_failed_check_sends_the_request_back_and_a_resubmission_shows_what_changed(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium", version="latest", description="token ghp_" + "a" * 36)
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)

    assert request.state == "changes_requested"
    statuses = {c.name: c.status for c in request.checks.all()}
    assert statuses["versions_pinned"] == statuses["no_secrets"] == "failed"
    reasons = (
        AuditEvent.objects.filter(action="approvals.request.changes_requested", object_id=str(request.pk))
        .get()
        .changes["reasons"]
    )
    assert any("latest" in reason for reason in reasons)
    assert any("GitHub token" in reason for reason in reasons)

    # The description is not a reviewed fact: fixing it alone waits for the requester's resubmission.
    catalog.tool_update(actor=world["owner"], tool=tool, data={"description": "Reads the inventory."})
    request.refresh_from_db()
    assert (request.round, request.state) == (1, "changes_requested")
    with django_capture_on_commit_callbacks(execute=True):
        submitting.request_resubmit(actor=world["owner"], request_id=request.pk)
    request.refresh_from_db()
    assert (request.round, request.state) == (2, "changes_requested")  # the version is still "latest"

    # The version is: changing it sends the request to checks again by itself, as round 3.
    with django_capture_on_commit_callbacks(execute=True):
        catalog.tool_update(actor=world["owner"], tool=tool, data={"version": "1.2.4"})
    request.refresh_from_db()

    assert (request.round, request.state) == (3, "in_review")
    assert decisions.resubmission_changes(request)["tool_version"] == {"before": "latest", "after": "1.2.4"}
    assert CheckRun.objects.filter(request=request).count() == 18


def test_separation_of_duties(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any, make_user: Any
) -> None:
    tool = make_tool(tier="high")
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    assert request.stages[0]["role"] == "security-reviewer"
    assert request.stages[1]["role"] == "data-owner"

    with pytest.raises(services.ApprovalPermissionError, match="own request"):
        decisions.request_decide(actor=world["owner"], request_id=request.pk, outcome="approve")
    with pytest.raises(services.ApprovalPermissionError, match="security-reviewer role"):
        decisions.request_decide(actor=world["data_owner"], request_id=request.pk, outcome="approve")
    insider = make_user("ines", roles=["security-reviewer", "data-owner"])
    from catalog.teams import team_set_member

    team_set_member(team=world["team"], user=insider)
    with pytest.raises(services.ApprovalPermissionError, match="owning team"):
        decisions.request_decide(actor=insider, request_id=request.pk, outcome="approve")
    assert AuditEvent.objects.filter(action="approvals.decision.refused", object_id=str(request.pk)).count() == 3

    both_roles = make_user("bo", roles=["security-reviewer", "data-owner"])
    request = decide(django_capture_on_commit_callbacks, both_roles, request)
    assert (request.state, request.current_stage) == ("in_review", 1)
    with pytest.raises(services.ApprovalPermissionError, match="one person counts once"):
        decisions.request_decide(actor=both_roles, request_id=request.pk, outcome="approve")
    request = decide(django_capture_on_commit_callbacks, world["data_owner"], request)
    assert request.state == "approved"
    assert Tool.objects.get(pk=tool.pk).status == "approved"


def test_the_database_refuses_self_approval_and_double_decisions(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.db import IntegrityError, transaction

    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="medium")
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.create(
            request=request,
            round=1,
            stage_index=0,
            stage_name="x",
            reviewer=world["owner"],
            outcome="approve",
        )
    Decision.objects.create(
        request=request,
        round=1,
        stage_index=0,
        stage_name="x",
        reviewer=world["reviewer"],
        outcome="approve",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.create(
            request=request,
            round=1,
            stage_index=1,
            stage_name="y",
            reviewer=world["reviewer"],
            outcome="approve",
        )


def test_reject_and_request_changes_need_a_comment_and_long_comments_are_refused(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="medium")
    )
    for outcome in ("reject", "request_changes"):
        with pytest.raises(services.ApprovalError) as excinfo:
            decisions.request_decide(actor=world["reviewer"], request_id=request.pk, outcome=outcome, comment="  ")
        assert "comment" in excinfo.value.errors
    with pytest.raises(services.ApprovalError, match="at most 10000"):
        decisions.request_decide(
            actor=world["reviewer"], request_id=request.pk, outcome="reject", comment="x" * 1_000_000
        )

    request = decide(
        django_capture_on_commit_callbacks,
        world["reviewer"],
        request,
        "reject",
        "Writes to restricted data without a DPA.",
    )
    assert request.state == "rejected"
    assert request.tool.status == "rejected"
    with pytest.raises(services.ApprovalConflict, match="decided or withdrawn"):
        decisions.request_decide(actor=world["reviewer2"], request_id=request.pk, outcome="approve")


def test_a_second_open_request_for_the_same_subject_is_a_conflict(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium")
    submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    with pytest.raises(services.ApprovalConflict, match="already exists"):
        submitting.request_submit(actor=world["owner"], kind="tool_onboarding", tool=tool)
    with pytest.raises(services.ApprovalPermissionError):
        submitting.request_submit(
            actor=world["member"], kind="tool_onboarding", tool=make_tool("other-api", tier="medium")
        )


def test_withdrawal_wins_over_a_later_decision(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="medium")
    )
    decisions.request_withdraw(actor=world["owner"], request_id=request.pk)
    with pytest.raises(services.ApprovalConflict):
        decisions.request_decide(actor=world["reviewer"], request_id=request.pk, outcome="approve")
    with pytest.raises(services.ApprovalConflict):
        decisions.request_withdraw(actor=world["owner"], request_id=request.pk)
    request.refresh_from_db()
    assert request.state == "withdrawn"
    assert request.tool.status == "draft"


def test_grant_approval_activates_the_grant_until_its_expiry_then_it_expires_once(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium")
    agent = catalog.agent_create(
        actor=world["owner"],
        data={
            "name": "stock-bot",
            "owner": "payments",
            "autonomy_level": 2,
            "human_in_loop": "per_action",
            "data_class": "internal",
            "description": "Restocks.",
        },
    )
    grant, _ = catalog.grant_request(actor=world["owner"], agent=agent, tool=tool)
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_grant", grant=grant)
    with django_capture_on_commit_callbacks(execute=True):
        decisions.request_attest(actor=world["reviewer"], request_id=request.pk)
    request.refresh_from_db()
    assert (request.tier, request.state) == ("low", "approved")
    grant.refresh_from_db()
    assert grant.status == "approved"
    assert grant.expires_at == request.approval_expires_at
    assert Agent.objects.get(pk=agent.pk).risk["driver"]

    with time_machine.travel(grant.expires_at + timedelta(minutes=1)), django_capture_on_commit_callbacks(execute=True):
        assert scans.expire_grants() == 1
        assert scans.expire_grants() == 0
    grant.refresh_from_db()
    assert grant.status == ToolGrant.Status.EXPIRED
    assert Notification.objects.filter(event="grant-expired").count() == 1


def test_sla_reminders_and_escalations_are_sent_once(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="medium")
    )
    due = request.due_at
    with django_capture_on_commit_callbacks(execute=True):
        assert scans.sla_scan(now=due - timedelta(hours=1)) == {"reminded": 1, "escalated": 0}
        assert scans.sla_scan(now=due - timedelta(hours=1)) == {"reminded": 0, "escalated": 0}
        assert scans.sla_scan(now=due + timedelta(hours=1)) == {"reminded": 0, "escalated": 1}
        assert scans.sla_scan(now=due + timedelta(hours=2)) == {"reminded": 0, "escalated": 0}
        assert scans.sla_scan(now=due + timedelta(hours=30)) == {"reminded": 0, "escalated": 1}
        assert scans.sla_scan(now=due + timedelta(hours=40)) == {"reminded": 0, "escalated": 0}
    assert Notification.objects.filter(request=request, event="escalation-1", recipient=world["lead"]).count() == 1
    assert Notification.objects.filter(request=request, event="escalation-2", recipient=world["admin"]).count() == 1
    reminded = Notification.objects.filter(request=request, event="reminder").values_list(
        "recipient__username", flat=True
    )
    assert sorted(reminded) == ["lena", "ravi", "rita"]


def test_recertification_opens_once_before_the_approval_ends(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="medium")
    )
    request = decide(django_capture_on_commit_callbacks, world["reviewer"], request)
    soon = request.approval_expires_at - timedelta(days=7)
    with django_capture_on_commit_callbacks(execute=True):
        assert scans.open_recertifications(now=soon) == 1
        assert scans.open_recertifications(now=soon) == 0
    recert = ApprovalRequest.objects.get(kind="recertification")
    assert recert.previous == request
    assert recert.state == "in_review"


def _make_riskier(world: dict[str, Any], tool: Any, capture: Any) -> None:
    """Restricted data, open-world reach, delegated credentials: the tool's tier rises to high."""
    with capture(execute=True):
        catalog.tool_update(
            actor=world["owner"],
            tool=tool,
            data={"data_class": "restricted", "reach": "open_world", "credential_scope": "delegated"},
        )


def test_only_a_subjects_latest_approval_opens_its_recertification(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """An approval superseded by a later one of the same subject (here a re-review after a riskier change) does
    not drive recertification; the latest one does, once."""
    tool = make_tool(tier="medium")
    first = decide(
        django_capture_on_commit_callbacks,
        world["reviewer"],
        submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool),
    )
    _make_riskier(world, tool, django_capture_on_commit_callbacks)
    latest = ApprovalRequest.objects.get(kind="re_review")
    for reviewer in ("reviewer", "data_owner"):
        latest = decide(django_capture_on_commit_callbacks, world[reviewer], latest)
    assert (first.state, latest.state) == ("approved", "approved")
    assert latest.decided_at is not None and first.decided_at is not None and latest.decided_at > first.decided_at

    assert latest.approval_expires_at < first.approval_expires_at  # the high tier's approval is shorter

    with django_capture_on_commit_callbacks(execute=True):
        assert scans.open_recertifications(now=latest.approval_expires_at - timedelta(days=7)) == 1
    recertification = ApprovalRequest.objects.get(kind="recertification")
    assert recertification.previous == latest
    decisions.request_withdraw(actor=world["owner"], request_id=recertification.pk)
    # When the superseded approval nears its own end, it opens no recertification.
    with django_capture_on_commit_callbacks(execute=True):
        assert scans.open_recertifications(now=first.approval_expires_at - timedelta(days=7)) == 0
    assert ApprovalRequest.objects.filter(kind="recertification").count() == 1


def test_a_riskier_change_reopens_review(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium")
    request = decide(
        django_capture_on_commit_callbacks,
        world["reviewer"],
        submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool),
    )
    assert request.state == "approved"

    with django_capture_on_commit_callbacks(execute=True):
        catalog.tool_update(actor=world["owner"], tool=tool, data={"title": "Inventory API v2"})
    assert not ApprovalRequest.objects.filter(kind="re_review").exists()

    _make_riskier(world, tool, django_capture_on_commit_callbacks)
    reopened = ApprovalRequest.objects.get(kind="re_review")
    assert reopened.tier == "high"
    assert reopened.previous == request
    assert reopened.state == "in_review"
    assert Tool.objects.get(pk=tool.pk).status == "pending_review"


def test_an_mcp_server_is_introspected_and_differences_are_flagged(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    served = [
        McpToolSpec(name="list_items", read_only=True, open_world=False),
        McpToolSpec(name="drop_table", destructive=True),
    ]
    with McpTestServer(served) as server:
        tool = catalog.tool_create(
            actor=world["owner"],
            data={"name": "items-mcp", "owner": "payments", "kind": "mcp_server", "transport": "streamable_http",
                  "endpoint_url": server.url, "version": "2.0.0", "description": "Items.", "data_class": "internal",
                  "reach": "closed", "credential_scope": "none", "capabilities": [{"name": "list_items", "read_only": True, "open_world": False}]},
        )  # fmt: skip
        request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    mcp_check = request.checks.get(name="mcp_tools")
    assert mcp_check.status == "failed"
    assert "drop_table" in mcp_check.summary
    assert {t["name"] for t in mcp_check.output["tools"]} == {"list_items", "drop_table"}
    assert request.checks.get(name="endpoint_reachable").status == "passed"
    assert request.state == "changes_requested"


def _mcp_tool(world: dict[str, Any], url: str) -> Tool:
    return catalog.tool_create(
        actor=world["owner"],
        data={"name": "items-mcp", "owner": "payments", "kind": "mcp_server", "transport": "streamable_http",
              "endpoint_url": url, "version": "2.0.0", "description": "Items.", "data_class": "internal",
              "reach": "closed", "credential_scope": "none", "capabilities": [{"name": "list_items", "read_only": True, "open_world": False}]},
    )  # fmt: skip


def test_the_endpoint_and_mcp_checks_share_one_handshake_and_keep_their_own_records(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    with McpTestServer([McpToolSpec(name="list_items", read_only=True, open_world=False)]) as server:
        request = submit(
            django_capture_on_commit_callbacks,
            world["owner"],
            kind="tool_onboarding",
            tool=_mcp_tool(world, server.url),
        )
        methods = server.methods_called()
    assert methods == ["initialize", "notifications/initialized", "tools/list"]  # no separate ping
    checks = {check.name: check for check in request.checks.all()}
    endpoint, mcp = checks["endpoint_reachable"], checks["mcp_tools"]
    assert (endpoint.status, endpoint.attempts, endpoint.output) == ("passed", 1, {"url": server.url, "status": 200})
    assert endpoint.summary == f"{server.url} answered HTTP 200."
    assert (mcp.status, mcp.attempts, mcp.output["tools"][0]["name"]) == ("passed", 1, "list_items")


def test_an_mcp_endpoint_that_fails_shows_as_the_endpoint_checks_error_while_the_mcp_check_keeps_its_verdict(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    served = [McpToolSpec(name="list_items", read_only=True, open_world=False)]
    with McpTestServer(served, http_errors={"initialize": 503, "ping": 503}) as server:
        request = submit(
            django_capture_on_commit_callbacks,
            world["owner"],
            kind="tool_onboarding",
            tool=_mcp_tool(world, server.url),
        )
        methods = server.methods_called()
    checks = {check.name: check for check in request.checks.all()}
    endpoint, mcp = checks["endpoint_reachable"], checks["mcp_tools"]
    assert (endpoint.status, endpoint.attempts) == ("error", 4)
    assert "answered HTTP 503" in endpoint.summary
    assert (mcp.status, mcp.attempts) == ("failed", 1)
    assert "does not speak MCP correctly" in mcp.summary
    # One handshake for both, then the endpoint check alone on its retries.
    assert methods == ["initialize", "ping", "ping", "ping"]
    assert request.state == "changes_requested"
    reasons = AuditEvent.objects.get(action="approvals.request.changes_requested", object_id=str(request.pk)).changes[
        "reasons"
    ]
    assert any(reason.startswith("Endpoint answers: Could not complete after 4 attempts") for reason in reasons)
    assert any(reason.startswith("MCP tools match: The server does not speak MCP") for reason in reasons)


def test_an_mcp_endpoint_that_is_down_is_an_error_of_both_network_checks(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    with McpTestServer([]) as gone:
        url = gone.url
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=_mcp_tool(world, url)
    )
    checks = {check.name: check for check in request.checks.all()}
    for name in ("endpoint_reachable", "mcp_tools"):
        assert (checks[name].status, checks[name].attempts) == ("error", 4)
        assert "did not answer" in checks[name].summary
    assert request.state == "changes_requested"


def test_an_endpoint_at_a_metadata_address_is_refused(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium", endpoint_url="http://169.254.169.254/latest/")
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    check = request.checks.get(name="endpoint_reachable")
    assert check.status == "failed"
    assert "outbound policy" in check.summary


def test_an_unreachable_endpoint_is_retried_then_shown_as_an_error(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    with LocalHttpServer({"/": Reply(status=503)}) as server:
        tool = make_tool(tier="medium", endpoint_url=server.url("/"))
        request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
        hits = len(server.requests)
    check = request.checks.get(name="endpoint_reachable")
    assert check.status == "error"
    assert check.attempts == 4
    assert hits == 4
    assert request.state == "changes_requested"


@contextlib.contextmanager
def failing_team_webhook(world: dict[str, Any], settings: Any) -> Iterator[LocalHttpServer]:
    """The owning team's chat webhook points at a local server that answers every post with a 500."""
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    with LocalHttpServer({"POST /hook": Reply(status=500)}) as server:
        world["team"].chat_webhook_url = server.url("/hook")
        world["team"].save()
        yield server


def test_a_failing_webhook_never_blocks_a_transition(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    with failing_team_webhook(world, settings) as server:
        request = submit(
            django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="medium")
        )
        request = decide(django_capture_on_commit_callbacks, world["reviewer"], request)
        posts = server.requests_to("/hook")
    assert request.state == "approved"
    webhook = Notification.objects.get(request=request, channel="webhook", event="approved")
    assert webhook.status == "failed"
    assert webhook.attempts == 6
    assert len(posts) == 6
    assert posts[0].json()["text"].startswith("Approved")


def test_a_webhook_pointing_at_metadata_is_never_called(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    world["team"].chat_webhook_url = "http://169.254.169.254/hook"
    world["team"].save()
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="medium")
    )
    request = decide(django_capture_on_commit_callbacks, world["reviewer"], request)
    webhook = Notification.objects.get(request=request, channel="webhook", event="approved")
    assert webhook.status == "failed"
    assert webhook.attempts == 1
    assert "metadata" in webhook.last_error


def test_agent_onboarding_activates_the_agent(world: dict[str, Any], django_capture_on_commit_callbacks: Any) -> None:
    agent = catalog.agent_create(
        actor=world["owner"],
        data={
            "name": "helper-bot",
            "owner": "payments",
            "autonomy_level": 4,  # declared at creation: onboarding reviews it (a later raise waits for approval)
            "human_in_loop": "per_action",
            "data_class": "confidential",
            "description": "Helps.",
        },
    )
    catalog.agent_update(actor=world["owner"], agent=agent, data={"data_class": "restricted"})
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="agent_onboarding", agent=agent)
    agent.refresh_from_db()
    assert (request.tier, request.state, agent.status) == ("medium", "in_review", "onboarding")
    request = decide(django_capture_on_commit_callbacks, world["reviewer"], request)
    assert request.state == "approved"
    agent.refresh_from_db()
    assert agent.status == "active"


def test_a_transient_failure_retries_only_that_check_and_the_request_moves_on_when_it_answers(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    answers = iter([Reply(status=503), Reply(status=503)])
    with LocalHttpServer({"/": lambda _request: next(answers, Reply(status=200))}) as server:
        tool = make_tool(tier="medium", endpoint_url=server.url("/"))
        request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
        hits = len(server.requests)
    checks = {check.name: check for check in request.checks.all()}
    assert hits == 3
    assert (checks["endpoint_reachable"].status, checks["endpoint_reachable"].attempts) == ("passed", 3)
    # The others were recorded on the first run and not run again.
    assert {name: check.attempts for name, check in checks.items() if name != "endpoint_reachable"} == {
        name: 1 for name in checks if name != "endpoint_reachable"
    }
    assert request.state == "in_review"
    completed = AuditEvent.objects.filter(action="approvals.request.checks_completed", object_id=str(request.pk))
    assert completed.count() == 1


def test_a_run_whose_lease_was_taken_over_does_not_overwrite_the_newer_run(
    world: dict[str, Any], make_tool: Any, settings: Any
) -> None:
    """A worker that stalled past its lease finishes after another run re-claimed the check: only the newer
    run's outcome counts."""
    tool = make_tool(tier="medium")
    request = submitting.request_submit(actor=world["owner"], kind="tool_onboarding", tool=tool)
    stalled = checks_running._claim_checks(request.pk, request.round)
    assert {c.name for c in stalled} == set(request.checks.values_list("name", flat=True))
    assert checks_running._claim_checks(request.pk, request.round) == []  # a duplicate delivery finds nothing
    CheckRun.objects.filter(request=request).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert checks_running.checks_run(request_id=request.pk, round_number=request.round).claimed == len(stalled)
    request.refresh_from_db()
    assert request.state == "in_review"
    outcomes = {c.id: checks.CheckResult(False, "stale verdict") for c in stalled}
    subject = services.subject_of(request)
    checks_running._checks_record(request.pk, request.round, stalled, outcomes, subject)  # type: ignore[arg-type]
    assert not CheckRun.objects.filter(request=request, summary="stale verdict").exists()
    assert set(CheckRun.objects.filter(request=request).values_list("attempts", flat=True)) == {2}
    request.refresh_from_db()
    assert request.state == "in_review"


def test_the_check_task_sends_its_transitions_notifications_itself(
    world: dict[str, Any],
    make_tool: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    automatic_low_tier: None,
) -> None:
    from approvals import tasks

    enqueued: list[Any] = []
    monkeypatch.setattr(tasks.send_notification, "delay", lambda *args, **kwargs: enqueued.append(args))
    monkeypatch.setattr(tasks.send_notification, "apply_async", lambda *args, **kwargs: enqueued.append(args))
    request = submit(
        django_capture_on_commit_callbacks,
        world["owner"],
        kind="tool_onboarding",
        tool=make_tool(tier="low"),
    )
    assert request.state == "approved"
    notification = Notification.objects.get(request=request, event="approved")
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert [message.to for message in mail.outbox if message.subject.startswith("Approved")] == [[world["owner"].email]]
    assert enqueued == []


def test_a_notification_the_check_task_cannot_send_gets_the_tasks_retries_up_to_the_same_limit(
    world: dict[str, Any],
    make_tool: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    automatic_low_tier: None,
) -> None:
    with failing_team_webhook(world, settings) as server:
        request = submit(
            django_capture_on_commit_callbacks,
            world["owner"],
            kind="tool_onboarding",
            tool=make_tool(tier="low"),
        )
        posts = server.requests_to("/hook")
    assert request.state == "approved"
    webhook = Notification.objects.get(request=request, channel="webhook", event="approved")
    assert (webhook.status, webhook.attempts) == ("failed", 6)
    assert len(posts) == 6


def test_a_redelivered_round_sends_the_notifications_a_dead_worker_left_unsent(
    world: dict[str, Any],
    make_tool: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    automatic_low_tier: None,
) -> None:
    from approvals import notifications

    with monkeypatch.context() as dying:  # the worker dies after the round's commit, before sending
        dying.setattr(notifications, "notifications_send", lambda notification_ids: None)
        request = submit(
            django_capture_on_commit_callbacks,
            world["owner"],
            kind="tool_onboarding",
            tool=make_tool(tier="low"),
        )
    notification = Notification.objects.get(request=request, event="approved")
    assert (request.state, notification.status) == ("approved", "pending")

    assert checks_running.checks_run(request_id=request.pk, round_number=request.round).claimed == 0  # redelivered

    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert checks_running.checks_run(request_id=request.pk, round_number=request.round).claimed == 0
    notification.refresh_from_db()
    assert notification.attempts == 1


def test_the_lock_takes_the_subject_from_the_caller_and_refuses_a_reference_to_another(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    """A caller that knows the request's subject (the decision form's subject_ref, the API's loaded request) saves
    the statement that reads it; a reference to another subject, or to none that exists, is a conflict."""
    tool, other = make_tool(), make_tool(name="ledger-api")
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    assert request.subject_key == f"tool:{tool.pk}"

    with transaction.atomic():
        with django_assert_num_queries(2):
            locked = services._locked(request.pk, subject_ref=request.subject_key)
        assert locked.locked_tool is not None and locked.locked_tool.pk == tool.pk
    loaded = services.loaded_subject(selectors.request_detail(request_id=request.pk))
    with transaction.atomic(), django_assert_num_queries(2):
        services._locked(request.pk, subject=loaded)
    for wrong in (f"tool:{other.pk}", "tool:999999", "agent:999999", f"grant:{tool.pk}"):
        with pytest.raises(services.ApprovalConflict), transaction.atomic():
            services._locked(request.pk, subject_ref=wrong)


def test_the_locked_request_comes_with_its_requester_and_team_after_its_subject_is_locked(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    """_locked reads the subject's ids, locks the tool (and keeps the row it read under the lock, for the
    transition's status change), then the request with its people (three statements)."""
    tool = make_tool()
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    decide(django_capture_on_commit_callbacks, world["reviewer"], request, "request_changes", comment="fix the docs")

    def values(instance: Any) -> dict[str, Any]:
        return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}

    expected = ApprovalRequest.objects.select_related("requester", "owning_team").get(pk=request.pk)
    with transaction.atomic():
        with django_assert_num_queries(3):
            locked = services._locked(request.pk)
            assert (locked.requester.username, locked.owning_team.name) == ("olive", "payments")
        assert locked.locked_tool is not None and locked.locked_agent is None
        assert (locked.locked_tool.pk, locked.locked_tool.status) == (tool.pk, Tool.objects.get(pk=tool.pk).status)
    assert values(locked) == values(expected)
    assert values(locked.requester) == values(expected.requester)
    assert values(locked.owning_team) == values(expected.owning_team)
    assert isinstance(locked.policy_snapshot, dict) and isinstance(locked.submitted_at, datetime)
    assert not locked._state.adding
    with pytest.raises(services.ApprovalConflict, match="does not exist"):
        services._locked(10**9)


def test_a_decision_reads_its_tool_once_and_leaves_the_second_decision_of_a_person_to_the_database(
    world: dict[str, Any], make_tool: Any, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The tool row the decision locks is the one its status change writes (no second read or lock), and
    whether the reviewer decided in this round already is answered by the unique constraint, not a query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tool = make_tool(tier="high")
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    both_roles = make_user("bo", roles=["security-reviewer", "data-owner"])
    with CaptureQueriesContext(connection) as first:
        request = decide(django_capture_on_commit_callbacks, both_roles, request)
    assert (request.state, request.current_stage) == ("in_review", 1)
    with CaptureQueriesContext(connection) as last:
        request = decide(django_capture_on_commit_callbacks, world["data_owner"], request)
    assert request.state == "approved" and Tool.objects.get(pk=tool.pk).status == "approved"

    for captured in (first, last):
        statements = [query["sql"] for query in captured.captured_queries]
        assert not [sql for sql in statements if sql.startswith("SELECT") and '"approvals_decision"' in sql]
    tool_reads = [
        q["sql"] for q in last.captured_queries if q["sql"].startswith("SELECT") and 'FROM "catalog_tool"' in q["sql"]
    ]
    assert len(tool_reads) == 1, tool_reads  # the subject's lock; the status change writes the row it returned

    # The same person again in this round: refused by the database's one-decision-per-person rule, with the
    # same 403 and audited refusal as before, and nothing written.
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("other", tier="high")
    )
    decide(django_capture_on_commit_callbacks, both_roles, request)
    refused = AuditEvent.objects.filter(action="approvals.decision.refused", object_id=str(request.pk)).count()
    with pytest.raises(services.ApprovalPermissionError, match="one person counts once"):
        decisions.request_decide(actor=both_roles, request_id=request.pk, outcome="approve")
    assert (
        AuditEvent.objects.filter(action="approvals.decision.refused", object_id=str(request.pk)).count() == refused + 1
    )
    assert Decision.objects.filter(request=request).count() == 1
    assert ApprovalRequest.objects.get(pk=request.pk).current_stage == 1


def test_it_reads_the_owning_team_and_the_submitters_membership_in_one_query(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from approvals.services import ApprovalPermissionError

    tool = Tool.objects.get(pk=make_tool(tier="medium").pk)  # as a caller loads it: its owner not read yet
    with pytest.raises(ApprovalPermissionError, match="Only maintainers of team payments"):
        submitting.request_submit(actor=world["member"], kind="tool_onboarding", tool=tool)
    assert not ApprovalRequest.objects.exists()

    tool = Tool.objects.get(pk=tool.pk)
    with CaptureQueriesContext(connection) as captured, django_capture_on_commit_callbacks(execute=False):
        request = submitting.request_submit(actor=world["owner"], kind="tool_onboarding", tool=tool)
    team_reads = [q["sql"] for q in captured.captured_queries if 'FROM "catalog_team"' in q["sql"]]
    assert len(team_reads) == 1, team_reads
    assert not [q["sql"] for q in captured.captured_queries if q["sql"].startswith('SELECT 1 AS "a" FROM')]
    assert request.bound_facts["tool_owner"] == "payments"
    assert request.owning_team_id == world["team"].pk

    admin_tool = Tool.objects.get(pk=make_tool(name="admin-tool", tier="medium").pk)
    by_admin = submitting.request_submit(actor=world["admin"], kind="tool_onboarding", tool=admin_tool)
    assert by_admin.requester_id == world["admin"].pk
