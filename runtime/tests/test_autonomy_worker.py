"""The autonomy gate end to end with a real Celery worker: a raise through the API waits while the worker runs the
request's checks (the evidence check included) on the real database; the approval then writes the level."""

from __future__ import annotations

import time
from typing import Any

import pytest

from approvals import decisions
from approvals.models import ApprovalRequest, CheckRun
from catalog import services as catalog
from catalog.models import Agent
from portal.context import acting_as, actor_for_user
from runtime.models import Evaluation
from runtime.tests.test_autonomy import FACTS, _days_of_telemetry

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _settled(request_id: int, worker: Any) -> ApprovalRequest:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        request = ApprovalRequest.objects.get(pk=request_id)
        if request.state not in ("checking", "draft"):
            return request
        time.sleep(0.2)
    pytest.fail("the worker did not finish the request's checks within 60 s:\n" + worker.log())


def test_a_raise_waits_for_the_workers_checks_and_an_approval(
    celery_worker_process: Any,
    catalog_setup: Any,
    token_client: Any,
    telemetry_token: Any,
    post_spans: Any,
    make_user: Any,
) -> None:
    alice = catalog_setup["alice"]
    with acting_as(actor_for_user(alice)):  # type: ignore[arg-type]
        catalog.agent_update(actor=alice, agent=catalog_setup["agent"], data=FACTS)
    client = token_client(user=alice, scopes=["read", "write"])

    response = client.patch("/api/v1/agents/billing-bot/", {"autonomy_level": 4}, format="json")
    assert response.status_code == 202, response.content
    first = _settled(response.json()["pending"][0]["request"], celery_worker_process)
    evidence = CheckRun.objects.get(request=first, name="autonomy_evidence")
    assert (first.state, evidence.status) == ("changes_requested", "failed")
    assert "telemetry on 0 of the last 14 days" in evidence.summary
    assert Agent.objects.get(name="billing-bot").autonomy_level == 3

    decisions.request_withdraw(actor=alice, request_id=first.pk)
    secret, _ = telemetry_token()
    _days_of_telemetry(post_spans, secret, 14)
    Evaluation.objects.create(agent_name="billing-bot", suite="golden", passed=True)
    response = client.patch("/api/v1/agents/billing-bot/", {"autonomy_level": 4}, format="json")
    assert response.status_code == 202, response.content
    request = _settled(response.json()["pending"][0]["request"], celery_worker_process)
    evidence = CheckRun.objects.get(request=request, name="autonomy_evidence")
    assert (request.state, evidence.status) == ("in_review", "passed"), evidence.summary

    while request.state == "in_review":
        assert request.stage is not None
        reviewer = make_user(f"reviewer-{request.current_stage}", roles=[request.stage["role"]])
        request = decisions.request_decide(
            actor=reviewer, request_id=request.pk, outcome="approve", facts_fingerprint=request.facts_fingerprint
        )
    assert request.state == "approved"
    assert Agent.objects.get(name="billing-bot").autonomy_level == 4
