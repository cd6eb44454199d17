from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from approvals import checks_running, submitting
from approvals.models import ApprovalRequest, CheckRun
from catalog import services as catalog
from portal.context import Actor, acting_as
from runtime.models import Evaluation
from runtime.tests.otlp_builders import as_json, tool_call

pytestmark = pytest.mark.django_db
SERVER = "io.github.example/github"


def _days_of_telemetry(post_spans: Any, secret: str, days: int, *, error_every: int = 0) -> None:
    now = timezone.now()
    spans = []
    for offset in range(days):
        for index in range(10):
            span = tool_call(
                "billing-bot",
                "create_issue",
                server=SERVER,
                error="Timeout" if error_every and index % error_every == 0 else "",
            )
            span["start_ns"] = int((now - timedelta(days=offset)).timestamp() * 1e9)
            spans.append(span)
    assert post_spans(as_json(spans), secret).status_code == 200


def _raise_to(agent: Any, user: Any, level: int) -> ApprovalRequest:
    with acting_as(Actor(kind="user", user_id=user.pk, label=user.username)):
        catalog.agent_update(actor=user, agent=agent, data={"autonomy_level": level})
    request = ApprovalRequest.objects.filter(agent=agent, kind="re_review").order_by("-pk").first()
    assert request is not None
    checks_running.checks_run(request_id=request.pk, round_number=request.round)
    return request


@override_settings(RUNTIME_AUTONOMY_DAYS=5)
def test_the_evidence_names_what_is_missing(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any, token_client: Any
) -> None:
    secret, _ = telemetry_token()
    _days_of_telemetry(post_spans, secret, 3, error_every=2)
    evidence = token_client(scopes=["read"]).get("/api/v1/agents/billing-bot/autonomy-evidence/", {"level": 4}).json()
    assert not evidence["satisfied"]
    assert evidence["days_with_telemetry"] == 3 and evidence["error_rate"] == 0.5
    assert len(evidence["reasons"]) == 3  # days, error rate, no eval


@override_settings(RUNTIME_AUTONOMY_DAYS=5)
def test_raising_to_level_4_goes_through_approvals_with_the_evidence_attached(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    agent, alice = catalog_setup["agent"], catalog_setup["alice"]
    request = _raise_to(agent, alice, 4)
    check = CheckRun.objects.get(request=request, name="autonomy_evidence")
    assert check.status == "failed"
    assert "telemetry on 0 of the last 5 days" in check.summary
    request.refresh_from_db()
    assert request.state == "changes_requested"

    secret, _ = telemetry_token()
    _days_of_telemetry(post_spans, secret, 5)
    Evaluation.objects.create(agent_name="billing-bot", suite="golden", passed=True)
    agent.refresh_from_db()
    request = submitting.request_resubmit(actor=alice, request_id=request.pk)
    checks_running.checks_run(request_id=request.pk, round_number=request.round)
    check = CheckRun.objects.get(request=request, round=request.round, name="autonomy_evidence")
    assert check.status == "passed", check.summary
    assert check.output["evidence"]["days_with_telemetry"] == 5 and check.output["evidence"]["evaluation"]["passed"]


def test_lowering_autonomy_needs_no_evidence(catalog_setup: Any) -> None:
    agent, alice = catalog_setup["agent"], catalog_setup["alice"]
    with acting_as(Actor(kind="user", user_id=alice.pk, label="alice")):
        catalog.agent_update(actor=alice, agent=agent, data={"autonomy_level": 2})
    assert not CheckRun.objects.filter(name="autonomy_evidence").exists()
