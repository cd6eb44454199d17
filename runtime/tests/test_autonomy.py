"""The autonomy gate: a raise to 4 or 5 waits in an `autonomy_change` request with the runtime evidence attached,
and only its approval writes the level. The doors (UI, API, import) are in test_autonomy_doors.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from approvals import checks_running, decisions, scans, submitting
from approvals.models import ApprovalRequest, CheckRun
from approvals.services import ApprovalConflict
from catalog import services as catalog
from catalog.models import Agent
from portal.audit import AuditEvent
from portal.context import acting_as, actor_for_user
from runtime.models import Evaluation
from runtime.tests.otlp_builders import as_json, tool_call

pytestmark = pytest.mark.django_db
SERVER = "io.github.example/github"
FACTS = {"description": "Bills.", "data_class": "internal", "human_in_loop": "per_action", "autonomy_level": 3}


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


def _update(agent: Any, user: Any, **data: Any) -> Agent:
    with acting_as(actor_for_user(user)):  # type: ignore[arg-type]
        return catalog.agent_update(actor=user, agent=agent, data=data)


def _checked(request: ApprovalRequest) -> ApprovalRequest:
    checks_running.checks_run(request_id=request.pk, round_number=request.round)
    request.refresh_from_db()
    return request


def _autonomy_request(agent: Any) -> ApprovalRequest:
    return ApprovalRequest.objects.get(agent=agent, kind="autonomy_change", state__in=["checking", "in_review"])


@pytest.fixture
def agent_at_3(catalog_setup: dict[str, Any]) -> Agent:
    agent = _update(catalog_setup["agent"], catalog_setup["alice"], **FACTS)
    assert agent.autonomy_level == 3 and agent.held_changes == []
    return agent


@pytest.fixture
def evidence(telemetry_token: Any, post_spans: Any) -> None:
    """Five days of clean telemetry and a passing eval: enough under RUNTIME_AUTONOMY_DAYS=5."""
    secret, _ = telemetry_token()
    _days_of_telemetry(post_spans, secret, 5)
    Evaluation.objects.create(agent_name="billing-bot", suite="golden", passed=True)


def _approve_every_stage(request: ApprovalRequest, make_user: Any) -> Any:
    """Each stage decided by a new holder of its role; returns the last approver."""
    approver = None
    while request.state == "in_review":
        stage = request.stage
        assert stage is not None
        approver = make_user(f"approver-{request.current_stage}", roles=[stage["role"]])
        with acting_as(actor_for_user(approver)):  # type: ignore[arg-type]
            request = decisions.request_decide(
                actor=approver, request_id=request.pk, outcome="approve", facts_fingerprint=request.facts_fingerprint
            )
        request.refresh_from_db()
    return approver


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
def test_it_holds_a_raise_to_5_in_a_request_whose_evidence_check_fails_without_telemetry(
    catalog_setup: Any, agent_at_3: Agent
) -> None:
    alice = catalog_setup["alice"]
    risk_before = (agent_at_3.risk_tier, agent_at_3.risk_score)
    agent = _update(agent_at_3, alice, autonomy_level=5, title="Billing Bot")

    assert agent.autonomy_level == 3  # the returned agent is what was written
    stored = Agent.objects.get(pk=agent.pk)
    assert (stored.autonomy_level, stored.title) == (3, "Billing Bot")  # the rest of the change is written
    assert (stored.risk_tier, stored.risk_score) == risk_before
    [held] = agent.held_changes
    request = _autonomy_request(agent)
    assert (held.field, held.current, held.requested, held.request_id) == ("autonomy_level", 3, 5, request.pk)
    assert held.message == f"Autonomy 5 requested: request #{request.pk}, waiting for approval."
    assert request.proposed_changes == {"autonomy_level": {"before": 3, "after": 5}}
    assert request.requester == alice
    submitted = AuditEvent.objects.get(action="approvals.request.submitted", object_id=str(request.pk))
    assert submitted.changes["proposed"] == {"autonomy_level": {"before": 3, "after": 5}}
    assert submitted.actor_user_id == alice.pk
    assert "autonomy 3 → 5" in request.title
    assert request.bound_facts["autonomy_level"] == 5  # what reviewers judge and the fingerprint binds
    assert any(f["code"] == "A" and "5" in f["label"] for f in request.risk["factors"]), request.risk

    request = _checked(request)
    check = CheckRun.objects.get(request=request, name="autonomy_evidence")
    assert check.status == "failed"
    assert "Not enough evidence for autonomy 5" in check.summary
    assert "telemetry on 0 of the last 5 days" in check.summary
    assert check.output["evidence"]["level"] == 5
    assert request.state == "changes_requested"
    assert Agent.objects.get(pk=agent.pk).autonomy_level == 3
    assert not AuditEvent.objects.filter(action="catalog.agent.updated", changes__has_key="autonomy_level").exclude(
        changes__autonomy_level__before=None
    )


@override_settings(RUNTIME_AUTONOMY_DAYS=5)
def test_approval_writes_the_level_as_the_final_approver_and_rescores(
    catalog_setup: Any, agent_at_3: Agent, evidence: None, make_user: Any
) -> None:
    alice = catalog_setup["alice"]
    score_before = agent_at_3.risk_score
    request = _checked(_autonomy_request(_update(agent_at_3, alice, autonomy_level=5)))
    check = CheckRun.objects.get(request=request, name="autonomy_evidence")
    assert check.status == "passed", check.summary
    assert check.output["evidence"]["days_with_telemetry"] == 5 and check.output["evidence"]["evaluation"]["passed"]
    assert request.state == "in_review"
    assert Agent.objects.get(pk=agent_at_3.pk).autonomy_level == 3

    approver = _approve_every_stage(request, make_user)

    request.refresh_from_db()
    agent = Agent.objects.get(pk=agent_at_3.pk)
    assert (request.state, agent.autonomy_level) == ("approved", 5)
    assert agent.risk_score > score_before
    assert any(f["code"] == "A" and "5" in f["label"] for f in agent.risk["factors"])
    event = AuditEvent.objects.get(action="catalog.agent.updated", changes__approved_in=request.pk)
    assert event.changes["autonomy_level"] == {"before": 3, "after": 5}
    assert (event.actor_user_id, event.actor_label) == (approver.pk, approver.username)
    assert agent.status == "draft"  # approving a change of facts does not activate the agent
    # The new level is the approved one: no re-review of the agent opens for it.
    assert not ApprovalRequest.objects.filter(agent=agent, kind="re_review").exists()
    # Near the approval's end, the agent is recertified as it is: nothing requested any more.
    assert scans.open_recertifications(now=request.approval_expires_at) == 1
    recertification = ApprovalRequest.objects.get(agent=agent, kind="recertification")
    assert recertification.proposed_changes == {} and recertification.bound_facts["autonomy_level"] == 5


@override_settings(RUNTIME_AUTONOMY_DAYS=5)
def test_a_rejected_or_withdrawn_raise_changes_nothing(
    catalog_setup: Any, agent_at_3: Agent, evidence: None, make_user: Any
) -> None:
    alice = catalog_setup["alice"]
    request = _checked(_autonomy_request(_update(agent_at_3, alice, autonomy_level=4)))
    reviewer = make_user("reviewer", roles=[request.stage["role"]])  # type: ignore[index]
    decisions.request_decide(
        actor=reviewer, request_id=request.pk, outcome="reject", comment="Not yet.", facts_fingerprint=None
    )
    request.refresh_from_db()
    assert request.state == "rejected"
    assert Agent.objects.get(pk=agent_at_3.pk).autonomy_level == 3

    again = _autonomy_request(_update(agent_at_3, alice, autonomy_level=4))  # a closed request holds nothing
    assert again.pk != request.pk
    decisions.request_withdraw(actor=alice, request_id=again.pk)
    agent = Agent.objects.get(pk=agent_at_3.pk)
    assert (agent.autonomy_level, agent.status) == (3, "draft")


def test_lowering_or_raising_within_1_to_3_is_written_at_once(catalog_setup: Any, agent_at_3: Agent) -> None:
    alice = catalog_setup["alice"]
    for level in (1, 2, 3):
        agent = _update(agent_at_3, alice, autonomy_level=level)
        assert (agent.autonomy_level, agent.held_changes) == (level, [])
    high = catalog.agent_create(
        actor=alice, data={"name": "high-bot", "owner": "payments", **FACTS, "autonomy_level": 5}
    )  # creating is not raising: the agent's onboarding reviews it
    assert _update(high, alice, autonomy_level=4).autonomy_level == 4
    assert _update(high, alice, autonomy_level=2).autonomy_level == 2
    assert not ApprovalRequest.objects.filter(kind="autonomy_change").exists()
    assert not CheckRun.objects.filter(name="autonomy_evidence").exists()


def test_a_second_raise_to_another_level_is_refused_naming_the_open_request(
    catalog_setup: Any, agent_at_3: Agent
) -> None:
    alice = catalog_setup["alice"]
    first = _update(agent_at_3, alice, autonomy_level=5).held_changes[0]
    # The same level again (a retried call, a re-import) answers the open request; nothing is filed twice.
    assert _update(agent_at_3, alice, autonomy_level=5).held_changes[0].request_id == first.request_id
    with pytest.raises(ApprovalConflict, match=rf"Autonomy 5 is already requested .* request #{first.request_id}"):
        _update(agent_at_3, alice, autonomy_level=4, title="Not written either")
    assert Agent.objects.get(pk=agent_at_3.pk).title != "Not written either"
    assert ApprovalRequest.objects.filter(kind="autonomy_change").count() == 1


@override_settings(RUNTIME_AUTONOMY_DAYS=5)
def test_a_change_of_facts_while_open_starts_a_new_round_that_still_asks_for_the_level(
    catalog_setup: Any, agent_at_3: Agent, evidence: None, make_user: Any
) -> None:
    alice = catalog_setup["alice"]
    request = _checked(_autonomy_request(_update(agent_at_3, alice, autonomy_level=5)))
    assert request.state == "in_review"
    seen = request.facts_fingerprint
    _update(agent_at_3, alice, data_class="confidential")
    request.refresh_from_db()
    assert (request.round, request.state) == (2, "checking")
    assert request.bound_facts["autonomy_level"] == 5 and request.bound_facts["agent_data_class"] == "confidential"
    reviewer = make_user("reviewer", roles=["security-reviewer", "security-lead", "data-owner"])
    with pytest.raises(ApprovalConflict, match="the facts changed"):
        decisions.request_decide(actor=reviewer, request_id=request.pk, outcome="approve", facts_fingerprint=seen)
    assert Agent.objects.get(pk=agent_at_3.pk).autonomy_level == 3


def test_nobody_files_an_autonomy_change_through_the_generic_submit(catalog_setup: Any, agent_at_3: Agent) -> None:
    from approvals.services import ApprovalError

    with pytest.raises(ApprovalError, match="autonomy change"):
        submitting.request_submit(actor=catalog_setup["alice"], kind="autonomy_change", agent=agent_at_3)
