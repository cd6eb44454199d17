"""A change of a subject's facts while it is reviewed, or after it was approved (approvals.rounds)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import decisions
from approvals.models import ApprovalRequest, Decision
from approvals.tests.conftest import READ_ONLY, TIER_FACTS, submitted
from catalog import facts, grant_rules
from catalog import services as catalog
from catalog.models import Tool, ToolGrant
from catalog.signals import entity_changed
from portal.context import acting_as, actor_for_user
from portal.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
REQUESTS = "/api/v1/approvals/requests/"
DESTRUCTIVE = {"name": "delete_everything", "read_only": False, "destructive": True, "open_world": True}


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def approve(capture: Any, actor: Any, request: ApprovalRequest, **kwargs: Any) -> ApprovalRequest:
    request.refresh_from_db()
    with capture(execute=True):
        decisions.request_decide(
            actor=actor,
            request_id=request.pk,
            outcome="approve",
            comment="ok",
            facts_fingerprint=request.facts_fingerprint,
            **kwargs,
        )
    request.refresh_from_db()
    return request


def test_a_change_of_facts_in_review_starts_a_new_round_and_refuses_the_stale_approval(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    tool = make_tool(tier="high")
    request = submitted(capture, world["owner"], kind="tool_onboarding", tool=tool)
    assert (request.tier, request.state, request.round) == ("high", "in_review", 1)
    request = approve(capture, world["reviewer"], request)
    assert request.current_stage == 1  # the security review is done; the data owner is next
    seen_by_data_owner = api(world["data_owner"]).get(f"{REQUESTS}{request.pk}/").json()

    # The owner adds a destructive, open-world capability through the API, as in the issue.
    with capture(execute=True):
        patched = api(world["owner"]).patch(
            f"/api/v1/tools/{tool.name}/", {"capabilities": [*READ_ONLY, DESTRUCTIVE]}, format="json"
        )
    assert patched.status_code == 200, patched.content
    assert patched.json()["annotations_trusted"] is False  # the new list was never attested

    stale = api(world["data_owner"]).post(
        f"{REQUESTS}{request.pk}/decide/",
        {"outcome": "approve", "facts_fingerprint": seen_by_data_owner["facts_fingerprint"], "stage_index": 1},
        format="json",
    )
    assert stale.status_code == 409
    message = stale.json()["error"]["message"]
    assert message.startswith("the facts changed since you loaded this request:")
    assert "capability:delete_everything" in message

    body = api(world["data_owner"]).get(f"{REQUESTS}{request.pk}/").json()
    assert (body["round"], body["state"], body["tier"]) == (2, "in_review", "critical")
    assert body["facts_fingerprint"] != seen_by_data_owner["facts_fingerprint"]
    assert body["current_stage_name"] == "Security lead"  # the critical policy, from its first stage
    assert all(stage["status"] != "decided" for stage in body["stages"])  # round 1's approval no longer counts
    changes = body["changes_since_last_round"]
    assert changes["capability:delete_everything"]["before"] is None
    assert changes["annotations_trusted"] == {"before": True, "after": False}
    assert body["rounds"][-1]["reason"] == "facts_changed"
    assert {check["round"] for check in body["checks"]} == {2}
    assert Decision.objects.filter(request=request, round=1, outcome="approve").count() == 1
    event = AuditEvent.objects.get(action="approvals.request.facts_changed", object_id=str(request.pk))
    assert event.changes["round"] == {"before": 1, "after": 2}
    assert Tool.objects.get(pk=tool.pk).status == "pending_review"


def test_the_api_and_the_page_require_the_fingerprint_to_approve(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submitted(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool())
    missing = api(world["reviewer"]).post(f"{REQUESTS}{request.pk}/decide/", {"outcome": "approve"}, format="json")
    assert missing.status_code == 400
    assert list(missing.json()["error"]["fields"]) == ["facts_fingerprint"]
    wrong = api(world["reviewer"]).post(
        f"{REQUESTS}{request.pk}/decide/", {"outcome": "approve", "facts_fingerprint": "0" * 64}, format="json"
    )
    assert wrong.status_code == 409 and "the facts changed since you loaded" in wrong.json()["error"]["message"]

    client.force_login(world["reviewer"])
    page = client.get(reverse("approvals:request", args=[request.pk])).content.decode()
    assert f'name="facts_fingerprint" value="{request.facts_fingerprint}"' in page
    url = reverse("approvals:decide", args=[request.pk])
    refused = client.post(url, {"outcome": "approve"})
    assert refused.status_code == 400 and "facts fingerprint missing" in refused.content.decode()
    stale = client.post(url, {"outcome": "approve", "facts_fingerprint": "1" * 64})
    assert stale.status_code == 409 and "the facts changed since you loaded" in stale.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"outcome": "approve", "facts_fingerprint": request.facts_fingerprint})
    assert done.status_code == 302
    assert Decision.objects.get(request=request).facts_fingerprint == request.facts_fingerprint


def test_a_change_nobody_reviews_leaves_the_round_alone(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submitted(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool())
    fingerprint = request.facts_fingerprint
    received: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    entity_changed.connect(listen)
    try:
        catalog.tool_update(actor=world["owner"], tool=request.tool, data={"description": "Now with more words."})
    finally:
        entity_changed.disconnect(listen)
    request.refresh_from_db()
    assert (request.round, request.state, request.facts_fingerprint) == (1, "in_review", fingerprint)
    assert len(received) == 1  # one signal per change, with the new fingerprint
    assert received[0]["fingerprint"] == fingerprint


def test_a_change_of_either_end_sends_an_open_grant_request_back_to_checks(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium")
    agent = catalog.agent_create(
        actor=world["owner"],
        data={"name": "helper", "owner": "payments", "description": "Helps.", "autonomy_level": 2,
              "human_in_loop": "per_action", "data_class": "internal"},
    )  # fmt: skip
    grant, _ = catalog.grant_request(actor=world["owner"], agent=agent, tool=tool, capability_names=["get_item"])
    request = submitted(django_capture_on_commit_callbacks, world["owner"], kind="tool_grant", grant=grant)
    assert request.state == "in_review"
    with django_capture_on_commit_callbacks(execute=True):
        catalog.agent_update(actor=world["owner"], agent=agent, data={"autonomy_level": 3})  # 4-5 would wait
    request.refresh_from_db()
    assert (request.round, request.bound_facts["autonomy_level"]) == (2, 3)
    with django_capture_on_commit_callbacks(execute=True):
        catalog.tool_update(actor=world["owner"], tool=tool, data={"reach": "closed"})
    request.refresh_from_db()
    assert request.round == 3
    assert request.round_snapshots[-1]["changes"]["reach"] == {"before": "allowlisted", "after": "closed"}


def test_an_approved_tool_that_gains_a_capability_is_reviewed_again_and_stays_served_at_the_same_tier(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    stdio = {"kind": "mcp_server", "transport": "stdio", "packages": [{"identifier": "x", "version": "1.0.0"}]}
    tool = make_tool(tier="critical", **stdio)  # hints never attested: critical whatever it gains
    request = submitted(capture, world["owner"], kind="tool_onboarding", tool=tool)
    for reviewer in ("lead", "data_owner", "business"):
        request = approve(capture, world[reviewer], request)
    assert request.state == "approved"

    more = [{"name": "delete_everything", "destructive": True}, {"name": "count_items", "read_only": True}]
    with capture(execute=True), acting_as(actor_for_user(world["owner"])):
        catalog.tool_update(actor=world["owner"], tool=tool, data={"capabilities": more})
    re_review = ApprovalRequest.objects.get(kind="re_review")
    assert re_review.justification == "New capabilities since the approval: count_items."
    assert (re_review.previous_id, re_review.requester) == (request.pk, world["owner"])
    tool.refresh_from_db()
    assert (tool.risk_tier, tool.status) == ("critical", "approved")  # same tier: still served while re-reviewed
    assert [entry["server"]["name"] for entry in APIClient().get("/v0.1/servers").json()["servers"]] == [
        "local.agent-portal/inventory-api"
    ]


def test_an_approved_tool_whose_tier_rises_leaves_the_registry_until_re_approved(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    tool = make_tool(
        tier="medium", kind="mcp_server", transport="stdio", packages=[{"identifier": "x", "version": "1.0.0"}]
    )
    approve(capture, world["reviewer"], submitted(capture, world["owner"], kind="tool_onboarding", tool=tool))
    assert len(APIClient().get("/v0.1/servers").json()["servers"]) == 1

    with capture(execute=True):
        catalog.tool_update(actor=world["owner"], tool=tool, data=TIER_FACTS["high"])
    re_review = ApprovalRequest.objects.get(kind="re_review")
    assert (re_review.tier, re_review.justification) == ("high", "Tier rose from medium to high.")
    assert Tool.objects.get(pk=tool.pk).status == "pending_review"
    assert APIClient().get("/v0.1/servers").json()["servers"] == []

    re_review = approve(capture, world["reviewer"], re_review)
    re_review = approve(capture, world["data_owner"], re_review)
    assert re_review.state == "approved"
    assert len(APIClient().get("/v0.1/servers").json()["servers"]) == 1


def test_attesting_hints_is_a_change_of_facts_too(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="critical")
    request = submitted(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    with django_capture_on_commit_callbacks(execute=True):
        catalog.tool_attest_annotations(tool=tool)
    request.refresh_from_db()
    assert request.round == 2
    assert request.round_snapshots[-1]["changes"]["annotations_trusted"] == {"before": False, "after": True}


def test_a_grant_covers_what_the_tool_had_when_approved_and_nothing_added_later(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    tool = make_tool(tier="low")
    agent = catalog.agent_create(
        actor=world["owner"],
        data={"name": "helper", "owner": "payments", "description": "Helps.", "autonomy_level": 1,
              "human_in_loop": "per_action", "data_class": "public"},
    )  # fmt: skip
    grant, _ = catalog.grant_request(actor=world["owner"], agent=agent, tool=tool)
    assert grant.capability_names == []  # "everything the tool has when approved"
    assert facts.grant_coverage(grant, ["get_item", "list_items"])["covered"] == ["get_item", "list_items"]
    request = submitted(capture, world["owner"], kind="tool_grant", grant=grant, attested_by=world["reviewer"])
    if request.state == "in_review":
        request = approve(capture, world["reviewer"], request)
    assert request.state == "approved"
    grant.refresh_from_db()
    assert grant.capability_names == ["get_item", "list_items"]  # frozen

    with capture(execute=True):
        catalog.tool_update(
            actor=world["owner"], tool=tool, data={"capabilities": [*READ_ONLY, {"name": "purge", "destructive": True}]}
        )
    grant.refresh_from_db()
    assert grant.capability_names == ["get_item", "list_items"]
    coverage = facts.grant_coverage(grant, facts.tool_capability_names(tool))
    assert coverage == {"covered": ["get_item", "list_items"], "not_covered": ["purge"], "missing": []}
    grant_facts = grant_rules.GrantFacts(
        grant_id=grant.pk,
        environment=grant.environment,
        status=grant.status,
        capability_names=tuple(grant.capability_names),
        expires_at=grant.expires_at,
    )
    ask = {
        "agent": "helper",
        "tool": tool.name,
        "environment": "production",
        "grants": [grant_facts],
        "now": timezone.now(),
    }
    assert grant_rules.decide(capability="get_item", **ask).allowed
    assert grant_rules.decide(capability="purge", **ask).verdict == grant_rules.Verdict.CAPABILITY_NOT_GRANTED
    assert ToolGrant.objects.get(pk=grant.pk).status == "approved"
