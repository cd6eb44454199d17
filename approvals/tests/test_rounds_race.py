"""A change of facts and an approval in two threads (PostgreSQL): the approval lands before the change (which then
reopens review) or is refused; never an approval recorded on facts other than the current ones."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from approvals import decisions, services, submitting
from approvals.models import ApprovalRequest, Decision
from approvals.tests.conftest import READ_ONLY, TIER_FACTS
from catalog import fingerprints
from catalog import services as catalog
from catalog.teams import team_create, team_set_member
from portal.roles import SECURITY_REVIEWER

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="threads racing need PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]


def _race(
    request: ApprovalRequest, tool: Any, owner: Any, reviewer: Any, *, change_delay: float, decide_delay: float
) -> dict[str, str]:
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}
    seen = request.facts_fingerprint

    def change() -> None:
        try:
            barrier.wait(timeout=30)
            time.sleep(change_delay)
            catalog.tool_update(
                actor=owner, tool=tool, data={"capabilities": [*READ_ONLY, {"name": "purge", "destructive": True}]}
            )
            results["change"] = "changed"
        except Exception as exc:  # a deadlock or any other error would be a 500
            results["change"] = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            connection.close()

    def decide() -> None:
        try:
            barrier.wait(timeout=30)
            time.sleep(decide_delay)
            decisions.request_decide(
                actor=reviewer, request_id=request.pk, outcome="approve", comment="ok", facts_fingerprint=seen
            )
            results["decide"] = "approved"
        except services.ApprovalConflict as exc:
            results["decide"] = f"conflict: {exc}"
        except Exception as exc:
            results["decide"] = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=change), threading.Thread(target=decide)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_a_fact_change_and_an_approval_race_without_a_stale_approval(make_user: Callable[..., Any]) -> None:
    from portal.celery import app

    owner = make_user("olive")
    reviewer = make_user("rita", roles=[SECURITY_REVIEWER])
    team = team_create(name="payments")
    team_set_member(team=team, user=owner, role="maintainer")
    outcomes: list[str] = []
    app.conf.task_always_eager = True
    try:
        # Two rounds with the order forced (each branch is seen), then true races.
        delays = [(0.0, 0.4), (0.4, 0.0), *[(0.0, 0.0)] * 6]
        for number, (change_delay, decide_delay) in enumerate(delays):
            tool = catalog.tool_create(
                actor=owner,
                data={"name": f"race-{number}", "owner": "payments", "kind": "cli", "version": "1.0.0",
                      "description": "Reads.", "capabilities": READ_ONLY, **TIER_FACTS["medium"]},
            )  # fmt: skip
            tool = catalog.tool_attest_annotations(tool=tool)
            request = submitting.request_submit(actor=owner, kind="tool_onboarding", tool=tool)
            request.refresh_from_db()
            assert (request.state, request.tier) == ("in_review", "medium")

            results = _race(request, tool, owner, reviewer, change_delay=change_delay, decide_delay=decide_delay)

            assert results["change"] == "changed", results
            request.refresh_from_db()
            if results["decide"] == "approved":
                # The approval committed first, on the facts it was shown; the change then reopened review.
                assert request.state == "approved" and request.round == 1
                re_review = ApprovalRequest.objects.get(kind="re_review", previous=request)
                assert re_review.state in ("checking", "in_review") and re_review.tier in ("high", "critical")
                outcomes.append("approved first")
            else:
                assert results["decide"].startswith("conflict: the facts changed since you loaded this request")
                assert request.round == 2 and request.state != "approved"
                assert not Decision.objects.filter(request=request).exists()
                outcomes.append("refused")
            for decision in Decision.objects.filter(request=request):
                facts_of_round = request.round_snapshots[decision.round - 1]
                assert decision.facts_fingerprint == fingerprints.digest(facts_of_round["facts"])
    finally:
        app.conf.task_always_eager = False
    assert outcomes[:2] == ["refused", "approved first"], outcomes


def _decide_while_subject_locked(
    request: ApprovalRequest, tool: Any, reviewer: Any, *, hold: float
) -> tuple[str, float]:
    """Another transaction holds the tool's row for `hold` seconds (as a worker's transition on the same subject
    does for a few milliseconds) while the reviewer decides: the outcome and how long the decision took."""
    from catalog.models import Tool

    locked, result = threading.Event(), {}

    def hold_subject() -> None:
        try:
            with transaction.atomic():
                list(Tool.objects.select_for_update().filter(pk=tool.pk))
                locked.set()
                time.sleep(hold)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_subject)
    holder.start()
    assert locked.wait(timeout=30)
    started = time.monotonic()
    try:
        decisions.request_decide(
            actor=reviewer, request_id=request.pk, outcome="approve", comment="ok", facts_fingerprint=seen(request)
        )
        result["decide"] = "approved"
    except services.ApprovalConflict as exc:
        result["decide"] = f"conflict: {exc}"
    took = time.monotonic() - started
    holder.join(timeout=60)
    return result["decide"], took


def seen(request: ApprovalRequest) -> str:
    return ApprovalRequest.objects.get(pk=request.pk).facts_fingerprint


def test_a_decision_waits_for_a_transition_on_its_subject_instead_of_a_409(make_user: Callable[..., Any]) -> None:
    """While another transaction holds the subject's row (the worker moving the agent's other request on), the
    reviewer's decision waits and then lands: not a 409 naming a change of facts that is not happening."""
    from portal.celery import app

    owner = make_user("olive")
    reviewer = make_user("rita", roles=[SECURITY_REVIEWER])
    team = team_create(name="payments")
    team_set_member(team=team, user=owner, role="maintainer")
    app.conf.task_always_eager = True
    try:
        tool = catalog.tool_create(
            actor=owner,
            data={"name": "held", "owner": "payments", "kind": "cli", "version": "1.0.0",
                  "description": "Reads.", "capabilities": READ_ONLY, **TIER_FACTS["medium"]},
        )  # fmt: skip
        tool = catalog.tool_attest_annotations(tool=tool)
        request = submitting.request_submit(actor=owner, kind="tool_onboarding", tool=tool)
    finally:
        app.conf.task_always_eager = False

    outcome, took = _decide_while_subject_locked(request, tool, reviewer, hold=0.5)
    assert outcome == "approved", outcome
    assert took >= 0.4  # it waited for the holder
    assert ApprovalRequest.objects.get(pk=request.pk).state == "approved"
    assert Decision.objects.filter(request=request).count() == 1
