"""A policy no one could decide is refused, and a request whose snapshot cannot be used waits where people see it."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from approvals import policies, services, submitting
from approvals.models import ApprovalPolicy, ApprovalRequest, PolicyStage
from portal.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

POLICIES = "/api/v1/approvals/policies/"


@pytest.fixture
def admin_client(world: dict[str, Any], token_client: Any) -> APIClient:
    return token_client(world["admin"], scopes=["read", "write", "admin"])


def test_it_refuses_a_policy_without_stages_on_a_tier_that_is_not_automatic(
    world: dict[str, Any], admin_client: APIClient
) -> None:
    refused = admin_client.patch(f"{POLICIES}medium/", {"stages": []}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["stages"]
    assert ApprovalPolicy.objects.get(tier="medium").stages.count() == 1

    turned_off = admin_client.patch(f"{POLICIES}low/", {"auto_approve": False}, format="json")
    assert turned_off.status_code == 400
    assert "stages" in turned_off.json()["error"]["fields"]
    assert ApprovalPolicy.objects.get(tier="low").auto_approve is True

    with pytest.raises(services.ApprovalError) as raised:
        policies.policy_update(actor=world["admin"], policy=ApprovalPolicy.objects.get(tier="high"), data={}, stages=[])
    assert "stages" in raised.value.errors
    automatic = admin_client.patch(f"{POLICIES}medium/", {"auto_approve": True, "stages": []}, format="json")
    assert automatic.status_code == 200, automatic.json()


def test_a_request_whose_snapshot_has_no_stages_is_sent_back_visibly_and_an_admin_resolves_it(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # A policy stored before this rule (or edited in the database): medium, not automatic, no stages.
    medium = ApprovalPolicy.objects.get(tier="medium")
    saved = list(medium.stages.values("order", "name", "role", "sla_hours"))
    medium.stages.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        request = submitting.request_submit(actor=world["owner"], kind="tool_onboarding", tool=make_tool())
    request.refresh_from_db()

    assert request.state == ApprovalRequest.State.CHANGES_REQUESTED
    event = AuditEvent.objects.filter(action="approvals.request.changes_requested", object_id=str(request.pk)).get()
    assert "no review stages" in event.changes["reasons"][0]
    assert event.changes["by"] == "approval policy"

    for stage in saved:
        PolicyStage.objects.create(policy=medium, **stage)
    with django_capture_on_commit_callbacks(execute=True):
        submitting.request_resubmit(actor=world["admin"], request_id=request.pk)
    request.refresh_from_db()
    assert (request.state, request.current_role) == ("in_review", "security-reviewer")


def test_a_damaged_snapshot_is_named_not_an_index_error() -> None:
    assert services.snapshot_problem({"tier": "high", "auto_approve": False, "stages": []}) is not None
    assert "damaged" in str(services.snapshot_problem({"tier": "high", "stages": [{"name": "x"}]}))
    assert services.snapshot_problem({"tier": "low", "auto_approve": True, "stages": []}) is None
    assert services.snapshot_problem({"stages": [{"name": "Security", "role": "security-reviewer"}]}) is None
