from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import submitting
from approvals.models import ApprovalPolicy, ApprovalRequest
from catalog import services as catalog
from catalog.models import Tool, ToolGrant
from portal.models import ApiToken, AuditEvent
from portal.tokens import token_revoke

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

REQUESTS = "/api/v1/approvals/requests/"
POLICIES = "/api/v1/approvals/policies/"


@pytest.fixture
def clients(world: dict[str, Any], token_client: Callable[..., APIClient]) -> dict[str, APIClient]:
    """Owner with read/write; reviewers with read/write/review; a platform admin with read/write/admin (a token acts
    with the platform-admin role only with the admin scope)."""
    return {
        "owner": token_client(world["owner"], scopes=["read", "write"]),
        "owner_review": token_client(world["owner"], scopes=["read", "write", "review"]),
        "reviewer": token_client(world["reviewer"], scopes=["read", "review"]),
        "reviewer2": token_client(world["reviewer2"], scopes=["read", "review"]),
        "data_owner": token_client(world["data_owner"], scopes=["read", "review"]),
        "admin": token_client(world["admin"], scopes=["read", "write", "admin"]),
        "member": token_client(world["member"], scopes=["read", "write"]),
    }


def post(capture: Any, client: APIClient, url: str, data: dict[str, Any] | None = None) -> Any:
    """POST and run what the services enqueue on commit (the checks, eagerly). An approval names the facts it was
    made on, as a client does: the `facts_fingerprint` of the request it read (unless the test gives one)."""
    data = dict(data or {})
    if url.endswith("/decide/") and data.get("outcome") == "approve" and "facts_fingerprint" not in data:
        seen = client.get(url.removesuffix("decide/"))
        if seen.status_code == 200:
            data["facts_fingerprint"] = seen.json()["facts_fingerprint"]
    with capture(execute=True):
        return client.post(url, data, format="json")


def submit(capture: Any, client: APIClient, **data: Any) -> dict[str, Any]:
    response = post(capture, client, REQUESTS, data)
    assert response.status_code == 201, response.json()
    return client.get(f"{REQUESTS}{response.json()['id']}/").json()


def test_it_submits_runs_the_checks_and_a_reviewer_with_a_review_token_approves(
    clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium")

    created = post(
        django_capture_on_commit_callbacks,
        clients["owner"],
        REQUESTS,
        {"kind": "tool_onboarding", "tool": tool.name, "justification": "Needed for restocking."},
    )

    assert created.status_code == 201, created.json()
    request_id = created.json()["id"]
    seen_by_owner = clients["owner"].get(f"{REQUESTS}{request_id}/").json()
    assert (seen_by_owner["state"], seen_by_owner["tier"], seen_by_owner["tool"]) == ("in_review", "medium", tool.name)
    assert {check["status"] for check in seen_by_owner["checks"]} == {"passed"}
    assert seen_by_owner["current_stage_name"] == "Security review"
    assert [stage["status"] for stage in seen_by_owner["stages"]] == ["current"]
    assert seen_by_owner["bound_facts"]["tool_version"] == "1.2.3"
    assert {factor["code"] for factor in seen_by_owner["risk"]["factors"]} >= {"D", "C"}
    assert any(item["title"] == "request.submitted" for item in seen_by_owner["timeline"])
    assert seen_by_owner["changes_since_last_round"] == {}
    assert seen_by_owner["can_decide"] is False
    assert "own request" in seen_by_owner["why_not"]
    seen_by_reviewer = clients["reviewer"].get(f"{REQUESTS}{request_id}/").json()
    assert (seen_by_reviewer["can_decide"], seen_by_reviewer["why_not"]) == (True, None)

    decided = post(
        django_capture_on_commit_callbacks,
        clients["reviewer"],
        f"{REQUESTS}{request_id}/decide/",
        {"outcome": "approve", "comment": "Read-only and pinned.", "stage_index": 0},
    )

    assert decided.status_code == 200, decided.json()
    body = decided.json()
    assert body["state"] == "approved"
    assert body["approval_expires_at"]
    assert [(d["reviewer"], d["outcome"]) for d in body["decisions"]] == [("rita", "approve")]
    assert body["stages"][0]["status"] == "decided"
    assert Tool.objects.get(pk=tool.pk).status == Tool.Status.APPROVED


def test_it_submits_a_tool_grant_from_agent_and_tool_names_and_repeats_idempotently(
    world: dict[str, Any], clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium")
    agent = catalog.agent_create(
        actor=world["owner"],
        data={"name": "stock-bot", "owner": "payments", "autonomy_level": 2, "human_in_loop": "per_action",
              "data_class": "internal", "description": "Restocks."},
    )  # fmt: skip
    data = {"kind": "tool_grant", "agent": agent.name, "tool": tool.name, "environment": "staging"}

    body = submit(django_capture_on_commit_callbacks, clients["owner"], **data)

    grant = ToolGrant.objects.get(agent=agent, tool=tool, environment="staging")
    assert (body["grant"], body["agent"], body["tool"], body["environment"]) == (
        grant.pk,
        agent.name,
        tool.name,
        "staging",
    )
    assert body["state"] == "in_review"
    again = post(django_capture_on_commit_callbacks, clients["owner"], REQUESTS, data)
    assert again.status_code == 409, again.json()
    assert f"(#{body['id']})" in again.json()["error"]["message"]
    assert ToolGrant.objects.filter(agent=agent, tool=tool).count() == 1


def test_it_refuses_submissions_with_bad_subjects_and_from_non_maintainers(
    clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="medium")

    unknown = post(
        django_capture_on_commit_callbacks, clients["owner"], REQUESTS, {"kind": "tool_onboarding", "tool": "nope"}
    )
    no_subject = post(django_capture_on_commit_callbacks, clients["owner"], REQUESTS, {"kind": "tool_onboarding"})
    bad_kind = post(
        django_capture_on_commit_callbacks, clients["owner"], REQUESTS, {"kind": "bribe", "tool": tool.name}
    )
    member = post(
        django_capture_on_commit_callbacks, clients["member"], REQUESTS, {"kind": "tool_onboarding", "tool": tool.name}
    )

    assert (unknown.status_code, list(unknown.json()["error"]["fields"])) == (400, ["tool"])
    assert (no_subject.status_code, list(no_subject.json()["error"]["fields"])) == (400, ["subject"])
    assert (bad_kind.status_code, list(bad_kind.json()["error"]["fields"])) == (400, ["kind"])
    assert member.status_code == 403
    assert "maintainers of team payments" in member.json()["error"]["message"]
    assert not ApprovalRequest.objects.exists()


def test_it_refuses_a_decision_from_a_token_without_the_review_scope(
    world: dict[str, Any],
    clients: dict[str, APIClient],
    token_client: Callable[..., APIClient],
    make_tool: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, clients["owner"], kind="tool_onboarding", tool=make_tool().name
    )
    write_only = token_client(world["reviewer"], scopes=["read", "write"])

    response = post(
        django_capture_on_commit_callbacks, write_only, f"{REQUESTS}{request['id']}/decide/", {"outcome": "approve"}
    )

    assert response.status_code == 403
    assert "'review' scope" in response.json()["error"]["message"]
    assert ApprovalRequest.objects.get(pk=request["id"]).state == "in_review"


def test_it_refuses_the_requester_deciding_their_own_request(
    clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, clients["owner"], kind="tool_onboarding", tool=make_tool().name
    )

    response = post(
        django_capture_on_commit_callbacks,
        clients["owner_review"],
        f"{REQUESTS}{request['id']}/decide/",
        {"outcome": "approve"},
    )

    assert response.status_code == 403
    assert response.json()["error"] == {
        "status": 403,
        "code": "permission_denied",
        "message": "Nobody approves their own request.",
        "fields": {},
    }
    assert AuditEvent.objects.filter(action="approvals.decision.refused", object_id=str(request["id"])).exists()


def test_it_refuses_a_reviewer_without_the_stages_role(
    clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, clients["owner"], kind="tool_onboarding", tool=make_tool().name
    )

    response = post(
        django_capture_on_commit_callbacks,
        clients["data_owner"],
        f"{REQUESTS}{request['id']}/decide/",
        {"outcome": "approve"},
    )

    assert response.status_code == 403
    assert "security-reviewer role" in response.json()["error"]["message"]


def test_it_answers_409_not_500_to_the_second_of_two_decisions(
    clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, clients["owner"], kind="tool_onboarding", tool=make_tool().name
    )
    url = f"{REQUESTS}{request['id']}/decide/"

    first = post(django_capture_on_commit_callbacks, clients["reviewer"], url, {"outcome": "approve"})
    second = post(
        django_capture_on_commit_callbacks, clients["reviewer2"], url, {"outcome": "reject", "comment": "No."}
    )
    repeated = post(django_capture_on_commit_callbacks, clients["reviewer"], url, {"outcome": "approve"})

    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]["code"]) == (409, "conflict")
    assert "decided or withdrawn meanwhile" in second.json()["error"]["message"]
    assert repeated.status_code == 409
    assert ApprovalRequest.objects.get(pk=request["id"]).state == "approved"


def test_it_answers_409_when_the_stage_moved_on(
    clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, clients["owner"], kind="tool_onboarding", tool=make_tool(tier="high").name
    )
    url = f"{REQUESTS}{request['id']}/decide/"
    assert [stage["role"] for stage in request["stages"]] == ["security-reviewer", "data-owner"]

    first = post(django_capture_on_commit_callbacks, clients["reviewer"], url, {"outcome": "approve", "stage_index": 0})
    stale = post(
        django_capture_on_commit_callbacks, clients["data_owner"], url, {"outcome": "approve", "stage_index": 0}
    )
    current = post(
        django_capture_on_commit_callbacks, clients["data_owner"], url, {"outcome": "approve", "stage_index": 1}
    )

    assert (first.status_code, first.json()["current_stage"]) == (200, 1)
    assert [stage["status"] for stage in first.json()["stages"]] == ["decided", "current"]
    assert stale.status_code == 409
    assert "reload" in stale.json()["error"]["message"]
    assert (current.status_code, current.json()["state"]) == (200, "approved")


def test_it_refuses_a_1_mb_comment_and_a_rejection_without_a_comment(
    clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, clients["owner"], kind="tool_onboarding", tool=make_tool().name
    )
    url = f"{REQUESTS}{request['id']}/decide/"

    huge = post(
        django_capture_on_commit_callbacks, clients["reviewer"], url, {"outcome": "reject", "comment": "x" * 1_000_000}
    )
    silent = post(django_capture_on_commit_callbacks, clients["reviewer"], url, {"outcome": "reject"})
    blank = post(
        django_capture_on_commit_callbacks, clients["reviewer"], url, {"outcome": "request_changes", "comment": "  "}
    )
    bad_outcome = post(django_capture_on_commit_callbacks, clients["reviewer"], url, {"outcome": "maybe"})

    assert huge.status_code == 400
    assert huge.json()["error"]["fields"] == {"comment": ["is 1000000 characters; at most 10000 are accepted."]}
    assert silent.status_code == 400
    assert list(silent.json()["error"]["fields"]) == ["comment"]
    assert "required when rejecting" in silent.json()["error"]["fields"]["comment"][0]
    assert (blank.status_code, list(blank.json()["error"]["fields"])) == (400, ["comment"])
    assert (bad_outcome.status_code, list(bad_outcome.json()["error"]["fields"])) == (400, ["outcome"])
    assert ApprovalRequest.objects.get(pk=request["id"]).state == "in_review"


def test_it_answers_409_to_a_decision_after_a_withdrawal(
    clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool()
    request = submit(django_capture_on_commit_callbacks, clients["owner"], kind="tool_onboarding", tool=tool.name)

    by_reviewer = post(django_capture_on_commit_callbacks, clients["reviewer"], f"{REQUESTS}{request['id']}/withdraw/")
    withdrawn = post(django_capture_on_commit_callbacks, clients["owner"], f"{REQUESTS}{request['id']}/withdraw/")
    decided = post(
        django_capture_on_commit_callbacks,
        clients["reviewer"],
        f"{REQUESTS}{request['id']}/decide/",
        {"outcome": "approve"},
    )
    again = post(django_capture_on_commit_callbacks, clients["owner"], f"{REQUESTS}{request['id']}/withdraw/")

    assert by_reviewer.status_code == 403
    assert (withdrawn.status_code, withdrawn.json()["state"]) == (200, "withdrawn")
    assert Tool.objects.get(pk=tool.pk).status == Tool.Status.DRAFT
    assert decided.status_code == 409
    assert "withdrawn" in decided.json()["error"]["message"].lower()
    assert again.status_code == 409


def test_it_resubmits_after_changes_were_requested_and_shows_what_changed(
    world: dict[str, Any], clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(version="latest")
    request = submit(django_capture_on_commit_callbacks, clients["owner"], kind="tool_onboarding", tool=tool.name)
    assert request["state"] == "changes_requested"
    assert {check["name"]: check["status"] for check in request["checks"]}["versions_pinned"] == "failed"
    url = f"{REQUESTS}{request['id']}/resubmit/"

    too_long = post(django_capture_on_commit_callbacks, clients["owner"], url, {"justification": "y" * 10_001})
    resubmitted = post(django_capture_on_commit_callbacks, clients["owner"], url, {"justification": "Pinned."})
    # The checks run after the commit, so the answer still says checking; they have finished by the next read.
    assert (resubmitted.status_code, resubmitted.json()["round"], resubmitted.json()["state"]) == (200, 2, "checking")
    assert clients["owner"].get(f"{REQUESTS}{request['id']}/").json()["state"] == "changes_requested"  # still latest
    # Pinning the version is a change of the reviewed facts: the request goes back to checks by itself (round 3).
    with django_capture_on_commit_callbacks(execute=True):
        patched = clients["owner"].patch(f"/api/v1/tools/{tool.name}/", {"version": "1.2.4"}, format="json")
    twice = post(django_capture_on_commit_callbacks, clients["owner"], url)

    assert patched.status_code == 200, patched.content
    assert (too_long.status_code, list(too_long.json()["error"]["fields"])) == (400, ["justification"])
    body = clients["owner"].get(f"{REQUESTS}{request['id']}/").json()
    assert (body["round"], body["state"]) == (3, "in_review")
    assert body["changes_since_last_round"]["tool_version"] == {"before": "latest", "after": "1.2.4"}
    assert {check["round"] for check in body["checks"]} == {3}
    assert body["justification"] == "Pinned."
    assert twice.status_code == 409


def test_it_lets_a_maintainer_attest_a_low_tier_request_with_a_review_token(
    world: dict[str, Any],
    make_user: Callable[..., Any],
    clients: dict[str, APIClient],
    token_client: Callable[..., APIClient],
    make_tool: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, clients["admin"], kind="tool_onboarding", tool=make_tool(tier="low").name
    )
    assert (request["state"], request["current_role"]) == ("in_review", "owner-maintainer")
    url = f"{REQUESTS}{request['id']}/attest/"

    with_write_scope = post(django_capture_on_commit_callbacks, clients["owner"], url)
    by_reviewer = post(django_capture_on_commit_callbacks, clients["reviewer"], url)
    attested = post(django_capture_on_commit_callbacks, clients["owner_review"], url)

    assert with_write_scope.status_code == 403
    assert by_reviewer.status_code == 403
    assert (attested.status_code, attested.json()["state"], attested.json()["attested_by"]) == (
        200,
        "approved",
        "olive",
    )


def test_it_lists_requests_with_filters_and_the_reviewer_queue(
    world: dict[str, Any], clients: dict[str, APIClient], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    medium = submit(
        django_capture_on_commit_callbacks,
        clients["owner"],
        kind="tool_onboarding",
        tool=make_tool("inventory-api").name,
    )
    high = submit(
        django_capture_on_commit_callbacks,
        clients["owner"],
        kind="tool_onboarding",
        tool=make_tool("ledger-api", tier="high").name,
    )
    admins = submit(
        django_capture_on_commit_callbacks, clients["admin"], kind="tool_onboarding", tool=make_tool("stock-api").name
    )

    def ids(client: APIClient, query: str = "") -> list[int]:
        response = client.get(f"{REQUESTS}?{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert sorted(ids(clients["reviewer"])) == sorted([medium["id"], high["id"], admins["id"]])
    assert sorted(ids(clients["reviewer"], "awaiting_me=true")) == sorted([medium["id"], high["id"], admins["id"]])
    assert ids(clients["reviewer"], "awaiting_me=true&tier=high") == [high["id"]]
    assert ids(clients["data_owner"], "awaiting_me=true") == []
    assert ids(clients["owner"], "awaiting_me=true") == []
    assert sorted(ids(clients["owner"], "mine=true")) == sorted([medium["id"], high["id"]])
    assert ids(clients["admin"], "mine=true&state=in_review") == [admins["id"]]
    assert len(ids(clients["reviewer"], "team=payments&kind=tool_onboarding&state=in_review")) == 3
    assert ids(clients["reviewer"], "team=other") == []

    post(
        django_capture_on_commit_callbacks,
        clients["reviewer"],
        f"{REQUESTS}{high['id']}/decide/",
        {"outcome": "approve"},
    )
    assert ids(clients["data_owner"], "awaiting_me=true") == [high["id"]]
    assert high["id"] not in ids(clients["reviewer"], "awaiting_me=true")

    bad = clients["reviewer"].get(f"{REQUESTS}?state=pending&awaiting_me=perhaps")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"state", "awaiting_me"}
    assert clients["reviewer"].get(f"{REQUESTS}999999/").status_code == 404
    assert (
        post(
            django_capture_on_commit_callbacks, clients["reviewer"], f"{REQUESTS}999999/decide/", {"outcome": "approve"}
        ).status_code
        == 404
    )


def test_it_lists_with_a_number_of_queries_that_does_not_grow_with_rows(
    world: dict[str, Any], clients: dict[str, APIClient], make_tool: Any, django_assert_max_num_queries: Any
) -> None:
    def add(names: range) -> None:
        for number in names:
            tool = make_tool(f"tool-{number}")
            submitting.request_submit(actor=world["owner"], kind="tool_onboarding", tool=tool)

    add(range(2))
    with CaptureQueriesContext(connection) as few:
        assert clients["reviewer"].get(REQUESTS).status_code == 200

    add(range(2, 12))
    with django_assert_max_num_queries(len(few)):
        assert clients["reviewer"].get(REQUESTS).json()["count"] == 12


def test_it_lets_only_platform_admins_change_policies_and_audits_the_change(
    clients: dict[str, APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    listed = clients["reviewer"].get(POLICIES)
    assert [policy["tier"] for policy in listed.json()] == ["low", "medium", "high", "critical"]
    assert [stage["role"] for stage in listed.json()[2]["stages"]] == ["security-reviewer", "data-owner"]
    change = {
        "validity_days": 120,
        "stages": [
            {"name": "Security review", "role": "security-reviewer", "sla_hours": 24},
            {"name": "Data owner", "role": "data-owner", "sla_hours": 48},
            {"name": "Business owner", "role": "business-owner", "sla_hours": 48},
        ],
    }

    refused = clients["owner"].patch(f"{POLICIES}high/", change, format="json")
    invalid = clients["admin"].patch(
        f"{POLICIES}high/",
        {"validity_days": 5000, "stages": [{"name": "x", "role": "y", "sla_hours": 0}]},
        format="json",
    )
    changed = clients["admin"].patch(f"{POLICIES}high/", change, format="json")

    assert refused.status_code == 403
    assert "platform admins" in refused.json()["error"]["message"]
    assert invalid.status_code == 400
    assert set(invalid.json()["error"]["fields"]) == {"validity_days", "stages[0].role", "stages[0].sla_hours"}
    assert changed.status_code == 200, changed.json()
    assert changed.json()["validity_days"] == 120
    assert [stage["role"] for stage in changed.json()["stages"]] == [
        "security-reviewer",
        "data-owner",
        "business-owner",
    ]
    assert ApprovalPolicy.objects.get(tier="high").validity_days == 120
    event = AuditEvent.objects.filter(action="approvals.policy.updated").get()
    assert event.actor_label.startswith("ada")
    assert event.changes["before"]["validity_days"] == 180
    assert event.changes["after"]["validity_days"] == 120
    assert clients["admin"].get(f"{POLICIES}nope/").status_code == 404


def test_it_answers_401_to_expired_revoked_and_missing_tokens(
    world: dict[str, Any], token_client: Callable[..., APIClient]
) -> None:
    expired = token_client(world["reviewer"], scopes=["read"])
    revoked = token_client(world["reviewer"], scopes=["read"])
    now = timezone.now()
    ApiToken.objects.filter(pk=expired.token.pk).update(
        created_at=now - timedelta(days=10), expires_at=now - timedelta(days=1)
    )
    token_revoke(token=revoked.token, revoked_by=world["reviewer"])

    answers = {
        "expired": expired.get(REQUESTS),
        "revoked": revoked.get(REQUESTS),
        "anonymous": APIClient().get(REQUESTS),
    }

    assert {name: response.status_code for name, response in answers.items()} == dict.fromkeys(answers, 401)
    assert "expired" in answers["expired"].json()["error"]["message"]
    assert "revoked" in answers["revoked"].json()["error"]["message"]


# --- admin --------------------------------------------------------------------------------------------------


def test_it_lets_platform_admins_edit_policies_in_the_admin_through_the_service(
    world: dict[str, Any], client: Any
) -> None:
    admin = world["admin"]
    admin.is_staff = True
    admin.save()
    client.force_login(admin)
    policy = ApprovalPolicy.objects.get(tier="medium")
    stage = policy.stages.get()
    form = {
        "auto_approve": "",
        "validity_days": "200",
        "description": "One reviewer.",
        "stages-TOTAL_FORMS": "1",
        "stages-INITIAL_FORMS": "1",
        "stages-MIN_NUM_FORMS": "0",
        "stages-MAX_NUM_FORMS": "1000",
        "stages-0-id": str(stage.pk),
        "stages-0-policy": str(policy.pk),
        "stages-0-order": "0",
        "stages-0-name": "Security review",
        "stages-0-role": "security-reviewer",
        "stages-0-sla_hours": "12",
    }
    url = f"/admin/approvals/approvalpolicy/{policy.pk}/change/"

    refused = client.post(url, {**form, "validity_days": "9999"})

    assert refused.status_code == 302
    policy.refresh_from_db()
    assert policy.validity_days == 365
    assert "must be between 1 and 730 days" in client.get(refused.url).content.decode()

    saved = client.post(url, form)

    assert saved.status_code == 302
    policy.refresh_from_db()
    assert (policy.validity_days, list(policy.stages.values_list("sla_hours", flat=True))) == (200, [12])
    assert AuditEvent.objects.filter(action="approvals.policy.updated").count() == 1


def test_it_shows_audit_events_and_tokens_read_only_in_the_admin(
    world: dict[str, Any], client: Any, token_client: Callable[..., APIClient]
) -> None:
    admin = world["admin"]
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    issued = token_client(world["owner"]).token
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event is not None

    tokens = client.get("/admin/portal/apitoken/")
    token_page = client.get(f"/admin/portal/apitoken/{issued.pk}/change/")
    events = client.get("/admin/portal/auditevent/")
    delete = client.post(f"/admin/portal/auditevent/{event.pk}/delete/", {"post": "yes"})

    assert tokens.status_code == token_page.status_code == events.status_code == 200
    assert issued.key_prefix in tokens.content.decode()
    assert issued.key_digest not in token_page.content.decode()
    assert b"Save" not in token_page.content
    assert delete.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    for page in ("approvals/approvalrequest", "approvals/decision", "catalog/tool", "catalog/agent"):
        assert client.get(f"/admin/{page}/").status_code == 200
        assert client.get(f"/admin/{page}/add/").status_code == 403


def test_it_refuses_the_requesters_own_attestation_on_submit_and_at_the_attest_endpoint(
    world: dict[str, Any],
    clients: dict[str, APIClient],
    token_client: Callable[..., APIClient],
    make_tool: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    tool = make_tool(tier="low")
    refused = post(
        django_capture_on_commit_callbacks,
        clients["owner"],
        REQUESTS,
        {"kind": "tool_onboarding", "tool": tool.name, "attest": True},
    )
    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["attest"]
    assert not ApprovalRequest.objects.filter(tool=tool).exists()

    request = submit(
        django_capture_on_commit_callbacks, clients["owner_review"], kind="tool_onboarding", tool=tool.name
    )
    assert (request["state"], request["current_role"], request["can_decide"]) == (
        "in_review",
        "owner-maintainer",
        False,
    )
    url = f"{REQUESTS}{request['id']}/attest/"
    own = post(django_capture_on_commit_callbacks, clients["owner_review"], url)
    assert own.status_code == 403
    assert "own request" in own.json()["error"]["message"]
    attested = post(django_capture_on_commit_callbacks, clients["reviewer"], url)
    assert (attested.status_code, attested.json()["state"], attested.json()["attested_by"]) == (200, "approved", "rita")
