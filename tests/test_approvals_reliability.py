"""Approvals under failure: a worker killed mid-check, tasks delivered twice, 50 reviewers deciding at once.

The worker tests run real Celery worker processes on the configured broker (Redis in CI) against the real test
database (PostgreSQL in CI); the concurrency test uses threads on PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from approvals import decisions as approvals_decisions
from approvals import scans, services, submitting
from approvals.models import ApprovalRequest, CheckRun, Decision, Notification
from approvals.tasks import run_checks, send_notification
from catalog import services as catalog
from catalog.teams import team_create, team_set_member
from portal.audit import audit_verify_chain
from portal.models import AuditEvent
from portal.roles import DATA_OWNER, SECURITY_REVIEWER
from portal.testing.servers import McpTestServer, McpToolSpec

SERVED = [McpToolSpec(name="list_items", read_only=True, open_world=False, idempotent=True)]
DECLARED = [{"name": "list_items", "read_only": True, "open_world": False, "idempotent": True}]


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}" + (f"\n{log()}" if log else ""))


@pytest.fixture
def people(make_user: Callable[..., Any]) -> dict[str, Any]:
    owner = make_user("olive")
    reviewers = [make_user(f"rev{i}", roles=[SECURITY_REVIEWER]) for i in range(2)]
    team = team_create(name="payments")
    team_set_member(team=team, user=owner, role="maintainer")
    return {"owner": owner, "reviewers": reviewers, "team": team}


@pytest.fixture
def short_check_lease(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Before the worker fixture starts, so its processes inherit the short lease."""
    settings.APPROVALS_CHECK_LEASE_SECONDS = 5
    monkeypatch.setenv("APPROVALS_CHECK_LEASE_SECONDS", "5")
    monkeypatch.setenv("SSRF_ALLOWLIST", "127.0.0.1")


def _mcp_tool(owner: Any, url: str) -> Any:
    tool = catalog.tool_create(
        actor=owner,
        data={"name": "items-mcp", "owner": "payments", "kind": "mcp_server", "transport": "streamable_http",
              "endpoint_url": url, "version": "1.0.0", "description": "Items.", "data_class": "internal",
              "reach": "allowlisted", "credential_scope": "none", "capabilities": DECLARED},
    )  # fmt: skip
    return catalog.tool_attest_annotations(tool=tool)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_during_a_check_is_replaced_and_the_request_ends_as_without_the_kill(
    people: dict[str, Any], short_check_lease: None, celery_worker_process: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    # The first worker is the fixture's; the MCP server answers slowly so the kill lands inside the check.
    with McpTestServer(SERVED, delay=4.0) as slow_server:
        tool = _mcp_tool(people["owner"], slow_server.url)
        with transaction.atomic():
            request = submitting.request_submit(actor=people["owner"], kind="tool_onboarding", tool=tool)
        first_worker = celery_worker_process.processes[0]
        _wait_for(
            lambda: CheckRun.objects.filter(request=request, name="mcp_tools", status="running").exists(),
            60, "the MCP check to start", celery_worker_process.log,
        )  # fmt: skip
        celery_worker_process.kill(first_worker)
        assert first_worker.poll() is not None
        celery_worker_process.start(name="replacement")
        requeued: list[int] = []

        def beat_then_check() -> bool:
            # What beat does every minute (here every few seconds): resend checks whose lease expired.
            if int(time.monotonic()) % 4 == 0:
                requeued.extend(scans.requeue_stale_checks())
            return ApprovalRequest.objects.get(pk=request.pk).state != "checking"

        _wait_for(beat_then_check, 120, "the request to leave checking", celery_worker_process.log)
        assert requeued, "the killed check was never found stale"

    request.refresh_from_db()
    checks = list(CheckRun.objects.filter(request=request))
    assert request.state == "in_review", [(c.name, c.status, c.summary) for c in checks]
    assert Counter(c.name for c in checks) == Counter(set(c.name for c in checks)), "a check was recorded twice"
    assert all(c.status == "passed" for c in checks)
    assert next(c for c in checks if c.name == "mcp_tools").attempts >= 2
    assert Decision.objects.filter(request=request).count() == 0
    stage_notes = Notification.objects.filter(request=request, event="stage")
    assert Counter(n.dedupe_key for n in stage_notes).most_common(1)[0][1] == 1
    assert stage_notes.count() == len(people["reviewers"])
    assert AuditEvent.objects.filter(action="approvals.request.stage_entered", object_id=str(request.pk)).count() == 1
    assert audit_verify_chain().ok


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_delivering_the_same_tasks_twice_has_no_duplicate_effect(
    people: dict[str, Any], celery_worker_process: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    with McpTestServer(SERVED) as server:
        tool = _mcp_tool(people["owner"], server.url)
        with transaction.atomic():
            request = submitting.request_submit(actor=people["owner"], kind="tool_onboarding", tool=tool)
        _wait_for(
            lambda: ApprovalRequest.objects.get(pk=request.pk).state == "in_review",
            60,
            "review",
            celery_worker_process.log,
        )
        _wait_for(
            lambda: not Notification.objects.filter(request=request, status__in=["pending", "sending"]).exists(),
            30,
            "notifications sent",
        )
        before = (
            list(CheckRun.objects.filter(request=request).values_list("name", "status", "attempts")),
            list(Notification.objects.filter(request=request).values_list("dedupe_key", "status", "attempts")),
            AuditEvent.objects.count(),
        )
        from django.core import mail  # noqa: F401  (the worker sends through its own backend)

        run_checks.delay(request.pk, request.round)
        run_checks.delay(request.pk, request.round)
        for notification in Notification.objects.filter(request=request):
            send_notification.delay(notification.pk)
        time.sleep(3)
        _wait_for(lambda: "not claimed" in celery_worker_process.log(), 30, "the duplicates to be consumed")
    after = (
        list(CheckRun.objects.filter(request=request).values_list("name", "status", "attempts")),
        list(Notification.objects.filter(request=request).values_list("dedupe_key", "status", "attempts")),
        AuditEvent.objects.count(),
    )
    assert after == before
    assert ApprovalRequest.objects.get(pk=request.pk).state == "in_review"


@pytest.mark.postgres
@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres") is False, reason="threads racing need PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_decisions_record_only_the_allowed_ones(make_user: Callable[..., Any], settings: Any) -> None:
    from portal.celery import app

    app.conf.task_always_eager = True
    try:
        owner = make_user("olive")
        team = team_create(name="payments")
        team_set_member(team=team, user=owner, role="maintainer")
        insider = make_user("insider", roles=[SECURITY_REVIEWER, DATA_OWNER])
        team_set_member(team=team, user=insider)
        security = [make_user(f"sec{i}", roles=[SECURITY_REVIEWER]) for i in range(24)]
        data_owners = [make_user(f"data{i}", roles=[DATA_OWNER]) for i in range(23)]
        both = make_user("both", roles=[SECURITY_REVIEWER, DATA_OWNER])
        tool = catalog.tool_create(
            actor=owner,
            data={"name": "ledger-api", "owner": "payments", "kind": "cli", "version": "1.0.0", "description": "Ledger.",
                  "data_class": "restricted", "reach": "open_world", "credential_scope": "delegated",
                  "capabilities": [{"name": "read_ledger", "read_only": True, "open_world": False}]},
        )  # fmt: skip
        tool = catalog.tool_attest_annotations(tool=tool)
        request = submitting.request_submit(actor=owner, kind="tool_onboarding", tool=tool)
        request.refresh_from_db()
        assert (request.tier, request.state) == ("high", "in_review")

        actors = [owner, insider, both, *security, *data_owners]
        assert len(actors) == 50
        barrier = threading.Barrier(len(actors))
        outcomes: list[str] = []
        lock = threading.Lock()

        def decide(actor: Any) -> None:
            try:
                barrier.wait(timeout=30)
                approvals_decisions.request_decide(actor=actor, request_id=request.pk, outcome="approve", comment="ok")
                result = "decided"
            except services.ApprovalConflict:
                result = "conflict"
            except services.ApprovalPermissionError:
                result = "refused"
            except Exception as exc:  # anything else would be a 500
                result = f"unexpected {type(exc).__name__}: {exc}"
            finally:
                connection.close()
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=decide, args=(actor,)) for actor in actors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        app.conf.task_always_eager = False

    assert len(outcomes) == 50
    assert not [o for o in outcomes if o.startswith("unexpected")], outcomes
    request.refresh_from_db()
    decisions = list(Decision.objects.filter(request=request).order_by("stage_index"))
    assert 1 <= len(decisions) <= 2
    assert [d.stage_index for d in decisions] == list(range(len(decisions)))
    assert len({d.reviewer_id for d in decisions}) == len(decisions)
    assert owner.pk not in {d.reviewer_id for d in decisions}
    assert insider.pk not in {d.reviewer_id for d in decisions}
    assert outcomes.count("decided") == len(decisions)
    assert request.state == ("approved" if len(decisions) == 2 else "in_review")
    assert audit_verify_chain().ok
