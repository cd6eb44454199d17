"""Approval pages: the reviewer queue and its inline decisions, a request's page, my requests, the catalog panels
and notification preferences."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals import decisions, services, submitting
from approvals.models import ApprovalRequest, Decision, NotificationPreference
from catalog import services as catalog
from catalog.models import Team, ToolGrant
from portal.context import acting_as, actor_for_user
from portal.models import AuditEvent
from portal.roles import DATA_OWNER, SECURITY_REVIEWER

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

HTMX = {"HTTP_HX_REQUEST": "true"}


def submit(capture: Any, actor: Any, **kwargs: Any) -> ApprovalRequest:
    with capture(execute=True):
        request = submitting.request_submit(actor=actor, **kwargs)
    request.refresh_from_db()
    return request


def html_of(response: Any) -> str:
    return response.content.decode()


@pytest.fixture
def in_review(world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any) -> ApprovalRequest:
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool())
    assert request.state == "in_review"
    return request


def decide_url(request: ApprovalRequest) -> str:
    return reverse("approvals:decide", args=[request.pk])


def seen(request: ApprovalRequest) -> str:
    """The facts fingerprint the review page carries in its decision form."""
    return ApprovalRequest.objects.get(pk=request.pk).facts_fingerprint


# --- the queue -------------------------------------------------------------------------------------------------


def test_it_lists_only_what_the_user_may_decide(
    client: Any, world: dict[str, Any], make_tool: Any, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    reviewing_owner = make_user("rowan", roles=[SECURITY_REVIEWER])
    from catalog.teams import team_set_member

    team_set_member(team=world["team"], user=reviewing_owner, role="maintainer")
    theirs = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("a"))
    own = submit(django_capture_on_commit_callbacks, reviewing_owner, kind="tool_onboarding", tool=make_tool("b"))

    client.force_login(reviewing_owner)
    html = html_of(client.get(reverse("approvals:queue")))
    assert f'id="request-{theirs.pk}"' in html
    assert f'id="request-{own.pk}"' not in html, "nobody reviews their own request"

    client.force_login(world["data_owner"])
    html = html_of(client.get(reverse("approvals:queue")))
    assert 'data-testid="review-row"' not in html, "a medium request waits for a security reviewer, not a data owner"
    assert "Nothing awaits your review" in html


def test_it_shows_each_row_with_subject_team_tier_factors_checks_and_due_time(
    client: Any, world: dict[str, Any], in_review: ApprovalRequest
) -> None:
    client.force_login(world["reviewer"])
    response = client.get(reverse("approvals:queue"))

    html = html_of(response)
    assert response.status_code == 200
    assert 'href="/catalog/tools/inventory-api/"' in html
    assert 'href="/catalog/teams/payments/"' in html
    assert "tool onboarding" in html
    assert 'data-testid="request-tier">medium<' in html
    assert "Data class</strong>: internal data" in html
    assert html.count('data-testid="check"') == 6
    assert "Descriptor complete" in html and "Passed" in html
    assert f'<time datetime="{in_review.due_at:%Y-%m-%dT%H:%M}' in html
    assert f'name="stage_index" value="{in_review.current_stage}"' in html
    assert f'hx-post="{decide_url(in_review)}"' in html and f'hx-target="#request-{in_review.pk}"' in html


def test_it_highlights_overdue_requests(client: Any, world: dict[str, Any], in_review: ApprovalRequest) -> None:
    from datetime import timedelta

    from django.utils import timezone

    ApprovalRequest.objects.filter(pk=in_review.pk).update(due_at=timezone.now() - timedelta(hours=3))
    client.force_login(world["reviewer"])

    html = html_of(client.get(reverse("approvals:queue")))

    assert "review-row overdue" in html and "overdue by 3" in html


def test_it_filters_the_queue_by_tier_kind_and_team(
    client: Any,
    world: dict[str, Any],
    make_tool: Any,
    make_user: Any,
    make_team: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    medium = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("m"))
    high = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("h", tier="high")
    )
    other_owner = make_user("otto")
    make_team("search", maintainers=[other_owner])
    elsewhere = catalog.tool_create(
        actor=other_owner,
        data={"name": "finder", "owner": "search", "kind": "cli", "version": "2.0.0", "description": "Finds.",
              "data_class": "internal", "reach": "allowlisted", "credential_scope": "none",
              "capabilities": [{"name": "find", "read_only": True, "open_world": False}]},
    )  # fmt: skip
    elsewhere = catalog.tool_attest_annotations(tool=elsewhere)
    other = submit(django_capture_on_commit_callbacks, other_owner, kind="tool_onboarding", tool=elsewhere)
    client.force_login(world["lead"])
    queue = reverse("approvals:queue")

    def rows(**params: str) -> set[int]:
        html = html_of(client.get(queue, params))
        return {pk for pk in (medium.pk, high.pk, other.pk) if f'id="request-{pk}"' in html}

    assert rows() == {medium.pk, high.pk, other.pk}
    assert rows(tier="high") == {high.pk}
    assert rows(team="search") == {other.pk}
    assert rows(tier="medium", team="payments") == {medium.pk}
    assert rows(kind="tool_grant") == set()
    assert rows(kind="tool_onboarding") == {medium.pk, high.pk, other.pk}
    assert rows(tier="no-such-tier") == {medium.pk, high.pk, other.pk}, "an unknown value is ignored, not an error"
    html = html_of(client.get(queue, {"team": "search"}))
    assert '<option value="search" selected>' in html, "the filter form keeps its state from the URL"


# --- inline decisions ----------------------------------------------------------------------------------------


def test_it_approves_inline_and_returns_the_updated_row(
    client: Any, world: dict[str, Any], in_review: ApprovalRequest, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(world["reviewer"])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            decide_url(in_review),
            {
                "facts_fingerprint": seen(in_review),
                "outcome": "approve",
                "comment": "",
                "stage_index": "0",
                "next": "/reviews/",
            },
            **HTMX,
        )

    html = html_of(response)
    assert response.status_code == 200
    assert "<html" not in html and html.strip().startswith("<li")
    assert f'id="request-{in_review.pk}"' in html
    assert 'data-testid="row-outcome"' in html and "Approved, valid until" in html
    assert "<form" not in html
    in_review.refresh_from_db()
    assert in_review.state == "approved"


def test_it_decides_with_the_subject_the_row_carries_and_refuses_a_row_about_another_subject(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The row's form sends the request's subject back, so the decision locks it without reading the request
    first (one statement fewer); a reference to another subject is refused after the locks, nothing written."""
    first, second, other = (make_tool(name=name) for name in ("inventory-api", "billing-api", "ledger-api"))
    requests = [
        submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
        for tool in (first, second)
    ]
    client.force_login(world["reviewer"])
    queue = html_of(client.get(reverse("approvals:queue")))
    assert f'name="subject_ref" value="tool:{first.pk}"' in queue
    assert f'name="subject_ref" value="tool:{second.pk}"' in queue

    def post(request: ApprovalRequest, subject_ref: str) -> tuple[int, int]:
        payload = {"facts_fingerprint": seen(request), "outcome": "approve", "stage_index": "0"}
        with CaptureQueriesContext(connection) as captured, django_capture_on_commit_callbacks(execute=True):
            response = client.post(decide_url(request), payload | {"subject_ref": subject_ref}, **HTMX)
        return response.status_code, len(captured)

    refused, _ = post(requests[0], f"tool:{other.pk}")
    assert refused == 409
    assert ApprovalRequest.objects.get(pk=requests[0].pk).state == "in_review"
    assert not Decision.objects.filter(request=requests[0]).exists()
    assert AuditEvent.objects.filter(action="approvals.decision.approve").count() == 0

    with_ref = post(requests[0], f"tool:{first.pk}")
    without_ref = post(requests[1], "")
    assert (with_ref[0], without_ref[0]) == (200, 200)
    assert with_ref[1] == without_ref[1] - 1
    assert set(ApprovalRequest.objects.filter(pk__in=[r.pk for r in requests]).values_list("state", flat=True)) == {
        "approved"
    }


def test_it_moves_a_high_tier_request_to_its_next_stage(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="high")
    )
    client.force_login(world["reviewer"])

    response = client.post(
        decide_url(request), {"facts_fingerprint": seen(request), "outcome": "approve", "stage_index": "0"}, **HTMX
    )

    assert response.status_code == 200
    assert "Moved to stage 2: Data owner." in html_of(response)
    client.force_login(world["data_owner"])
    assert f'id="request-{request.pk}"' in html_of(client.get(reverse("approvals:queue")))


def test_it_refuses_a_rejection_without_a_comment_and_changes_nothing(
    client: Any, world: dict[str, Any], in_review: ApprovalRequest
) -> None:
    client.force_login(world["reviewer"])

    response = client.post(decide_url(in_review), {"outcome": "reject", "comment": "  ", "stage_index": "0"}, **HTMX)

    html = html_of(response)
    assert response.status_code == 400
    assert 'data-testid="comment-error"' in html
    assert "Comment is required when rejecting or requesting changes" in html
    assert "<form" in html, "the row keeps its form so the reviewer can add the comment"
    in_review.refresh_from_db()
    assert in_review.state == "in_review"
    assert not Decision.objects.filter(request=in_review).exists()


def test_it_rejects_with_a_comment(client: Any, world: dict[str, Any], in_review: ApprovalRequest) -> None:
    client.force_login(world["reviewer"])

    response = client.post(
        decide_url(in_review), {"outcome": "reject", "comment": "Pins nothing.", "stage_index": "0"}, **HTMX
    )

    assert response.status_code == 200
    assert "Rejected; the requester gets your comment." in html_of(response)
    assert Decision.objects.get(request=in_review).comment == "Pins nothing."


def test_it_answers_409_to_a_decision_on_an_already_decided_request(
    client: Any, world: dict[str, Any], in_review: ApprovalRequest
) -> None:
    client.force_login(world["reviewer"])
    first = client.post(
        decide_url(in_review), {"facts_fingerprint": seen(in_review), "outcome": "approve", "stage_index": "0"}, **HTMX
    )
    assert first.status_code == 200

    client.force_login(world["reviewer2"])
    second = client.post(decide_url(in_review), {"outcome": "reject", "comment": "No.", "stage_index": "0"}, **HTMX)

    html = html_of(second)
    assert second.status_code == 409
    assert 'data-testid="row-error"' in html
    assert f"Request #{in_review.pk} is Approved; it was decided or withdrawn meanwhile." in html
    in_review.refresh_from_db()
    assert in_review.state == "approved"
    assert Decision.objects.filter(request=in_review).count() == 1


def test_it_answers_409_to_a_decision_for_a_stage_that_moved_on(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any, make_user: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(tier="high")
    )
    client.force_login(world["reviewer"])
    assert (
        client.post(
            decide_url(request), {"facts_fingerprint": seen(request), "outcome": "approve", "stage_index": "0"}
        ).status_code
        == 302
    )

    both = make_user("bea", roles=[SECURITY_REVIEWER, DATA_OWNER])
    client.force_login(both)
    response = client.post(
        decide_url(request), {"facts_fingerprint": seen(request), "outcome": "approve", "stage_index": "0"}
    )

    assert response.status_code == 409
    assert "That stage was decided meanwhile" in html_of(response)
    request.refresh_from_db()
    assert request.current_stage == 1


def test_it_answers_403_to_someone_who_may_not_decide(
    client: Any, world: dict[str, Any], in_review: ApprovalRequest
) -> None:
    client.force_login(world["member"])

    response = client.post(
        decide_url(in_review), {"facts_fingerprint": seen(in_review), "outcome": "approve", "stage_index": "0"}, **HTMX
    )

    assert response.status_code == 403
    assert "needs the security-reviewer role" in html_of(response)
    in_review.refresh_from_db()
    assert in_review.state == "in_review"


def test_it_decides_without_javascript_and_redirects_back(
    client: Any, world: dict[str, Any], in_review: ApprovalRequest
) -> None:
    client.force_login(world["reviewer"])

    response = client.post(
        decide_url(in_review),
        {
            "facts_fingerprint": seen(in_review),
            "outcome": "approve",
            "stage_index": "0",
            "next": "/reviews/?tier=medium",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/reviews/?tier=medium"

    in_review.refresh_from_db()
    assert in_review.state == "approved"
    offsite = client.post(
        decide_url(in_review),
        {"facts_fingerprint": seen(in_review), "outcome": "approve", "next": "https://evil.example/"},
    )
    assert offsite.status_code == 409, "and a decided request is not decided twice"


def test_it_never_sends_a_decision_elsewhere(client: Any, world: dict[str, Any], in_review: ApprovalRequest) -> None:
    client.force_login(world["reviewer"])

    response = client.post(
        decide_url(in_review),
        {"facts_fingerprint": seen(in_review), "outcome": "approve", "next": "https://evil.example/"},
    )

    assert response.status_code == 302 and response["Location"] == reverse("approvals:request", args=[in_review.pk])


def test_it_offers_maintainers_an_attest_button_for_low_tier_requests(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    request = submit(
        django_capture_on_commit_callbacks, world["admin"], kind="tool_onboarding", tool=make_tool(tier="low")
    )
    assert request.current_role == services.OWNER_ATTESTATION_ROLE
    client.force_login(world["owner"])

    html = html_of(client.get(reverse("approvals:queue")))
    assert f'id="request-{request.pk}"' in html and ">Attest</button>" in html
    assert ">Reject</button>" not in html

    response = client.post(
        decide_url(request), {"facts_fingerprint": seen(request), "outcome": "approve", "stage_index": "0"}, **HTMX
    )
    assert response.status_code == 200
    request.refresh_from_db()
    assert (request.state, request.attested_by) == ("approved", world["owner"])


def _queue_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("approvals:queue"))
    assert response.status_code == 200
    return len(queries)


def test_it_runs_the_same_number_of_queries_for_3_and_20_requests(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    for number in range(3):
        submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(f"t{number}"))
    client.force_login(world["reviewer"])
    few = _queue_queries(client)
    for number in range(3, 20):
        submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool(f"t{number}"))

    assert html_of(client.get(reverse("approvals:queue"))).count('data-testid="review-row"') == 20
    assert _queue_queries(client) == few


# --- a request's page --------------------------------------------------------------------------------------------


def test_it_shows_a_request_with_its_stages_facts_and_timeline(
    client: Any, world: dict[str, Any], in_review: ApprovalRequest
) -> None:
    client.force_login(world["member"])

    response = client.get(reverse("approvals:request", args=[in_review.pk]))

    html = html_of(response)
    assert response.status_code == 200, "every signed-in user may read a request"
    assert "<h1>inventory-api</h1>" in html
    assert 'data-testid="request-state">In review<' in html
    assert html.count('data-testid="risk-factor"') == 6
    assert 'data-testid="stage"' in html and "Security review" in html and "Current" in html
    assert "Tool version" in html and "1.2.3" in html
    assert html.count('data-testid="timeline-item"') >= 8
    assert "request.submitted" in html and "request.stage_entered" in html and "round 1: No secret values" in html
    assert "stage via email" in html, "notifications are on the timeline"
    assert 'data-testid="refusal"' in html and "needs the security-reviewer role" in html
    assert f'action="{decide_url(in_review)}"' not in html


def test_it_shows_what_changed_since_the_last_review(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(version="latest")
    request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
    assert request.state == "changes_requested"
    client.force_login(world["owner"])

    page = html_of(client.get(reverse("approvals:request", args=[request.pk])))
    assert "Resubmit</button>" in page and "Withdraw request</button>" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("approvals:resubmit", args=[request.pk]), {"justification": "Pinned it."})
    assert response.status_code == 302
    # A change of a reviewed fact sends the request back to checks by itself, and the page says what changed.
    with django_capture_on_commit_callbacks(execute=True), acting_as(actor_for_user(world["owner"])):
        catalog.tool_update(actor=world["owner"], tool=tool, data={"version": "1.2.4"})

    html = html_of(client.get(response["Location"]))
    assert "What changed since the last review" in html
    assert 'data-testid="change"' in html and "<del>latest</del>" in html and "<ins>1.2.4</ins>" in html
    assert "round 3" in html and "changed by olive" in html
    request.refresh_from_db()
    assert (request.round, request.state, request.justification) == (3, "in_review", "Pinned it.")


def test_it_lets_the_requester_withdraw(client: Any, world: dict[str, Any], in_review: ApprovalRequest) -> None:
    client.force_login(world["owner"])

    response = client.post(reverse("approvals:withdraw", args=[in_review.pk]), {"next": reverse("approvals:mine")})

    assert response.status_code == 302 and response["Location"] == reverse("approvals:mine")
    in_review.refresh_from_db()
    assert in_review.state == "withdrawn"
    again = client.post(reverse("approvals:withdraw", args=[in_review.pk]))
    assert again.status_code == 409 and "can no longer be withdrawn" in html_of(again)


def test_it_refuses_a_withdrawal_by_someone_else(
    client: Any, world: dict[str, Any], in_review: ApprovalRequest
) -> None:
    client.force_login(world["reviewer"])

    response = client.post(reverse("approvals:withdraw", args=[in_review.pk]))

    assert response.status_code == 403 and "Only the requester" in html_of(response)
    in_review.refresh_from_db()
    assert in_review.state == "in_review"


def test_it_answers_404_for_an_unknown_request(client: Any, world: dict[str, Any]) -> None:
    client.force_login(world["member"])

    assert client.get(reverse("approvals:request", args=[999999])).status_code == 404
    assert client.post(reverse("approvals:decide", args=[999999]), {"outcome": "approve"}).status_code == 404


# --- my requests -------------------------------------------------------------------------------------------------


def test_it_lists_my_requests_with_their_outcomes(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    approved = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("a"))
    rejected = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("b"))
    waiting = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=make_tool("c"))
    decisions.request_decide(actor=world["reviewer"], request_id=approved.pk, outcome="approve")
    decisions.request_decide(actor=world["reviewer"], request_id=rejected.pk, outcome="reject", comment="Too broad.")
    client.force_login(world["owner"])

    html = html_of(client.get(reverse("approvals:mine")))

    assert html.count('data-testid="my-request"') == 3
    assert f'href="/reviews/requests/{approved.pk}/"' in html and "Approved; valid until" in html
    assert "Too broad." in html and "rita, Security review" in html
    withdraw = f'action="/reviews/requests/{waiting.pk}/withdraw/"'
    assert withdraw in html and f'action="/reviews/requests/{approved.pk}/withdraw/"' not in html
    only_rejected = html_of(client.get(reverse("approvals:mine"), {"state": "rejected"}))
    assert only_rejected.count('data-testid="my-request"') == 1


# --- catalog panels -----------------------------------------------------------------------------------------------


def test_it_lets_a_maintainer_submit_a_tool_from_its_page(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool(tier="low")
    client.force_login(world["owner"])

    page = html_of(client.get(reverse("catalog:tool", args=[tool.name])))
    assert "Never submitted for approval." in page and "Submit for onboarding</button>" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("approvals:submit"),
            {"kind": "tool_onboarding", "name": tool.name, "justification": "Stock checks."},
        )

    request = ApprovalRequest.objects.get(tool=tool)
    assert response.status_code == 302 and response["Location"] == reverse("approvals:request", args=[request.pk])
    assert (request.state, request.attested_by, request.justification) == ("in_review", None, "Stock checks.")
    assert request.current_role == services.OWNER_ATTESTATION_ROLE, "attested by someone other than the requester"
    with django_capture_on_commit_callbacks(execute=True):
        decisions.request_attest(actor=world["reviewer"], request_id=request.pk)
    page = html_of(client.get(reverse("catalog:tool", args=[tool.name])))
    assert f'href="/reviews/requests/{request.pk}/"' in page and 'data-testid="request-state">Approved<' in page


def test_it_offers_the_submit_form_only_to_maintainers_without_an_open_request(
    client: Any, world: dict[str, Any], make_tool: Any, in_review: ApprovalRequest
) -> None:
    other = make_tool("other")
    client.force_login(world["member"])
    assert "Submit for onboarding</button>" not in html_of(client.get(reverse("catalog:tool", args=[other.name])))
    assert client.post(reverse("approvals:submit"), {"kind": "tool_onboarding", "name": other.name}).status_code == 403

    client.force_login(world["owner"])
    page = html_of(client.get(reverse("catalog:tool", args=["inventory-api"])))
    assert "Submit for onboarding</button>" not in page and 'data-testid="request-state">In review<' in page
    response = client.post(
        reverse("approvals:submit"), {"kind": "tool_onboarding", "name": "inventory-api"}, follow=True
    )
    assert "An open tool onboarding request for this already exists" in html_of(response)


def test_it_requests_tool_access_for_an_agent_and_shows_active_grants(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_tool()
    agent = catalog.agent_create(
        actor=world["owner"],
        data={"name": "helper", "owner": "payments", "description": "Helps.", "autonomy_level": 1,
              "human_in_loop": "per_action", "data_class": "internal"},
    )  # fmt: skip
    client.force_login(world["owner"])
    assert "Request access</button>" in html_of(client.get(reverse("catalog:agent", args=[agent.name])))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("approvals:grant"),
            {"agent": agent.name, "tool": tool.name, "environment": "staging"},
        )

    grant = ToolGrant.objects.get(agent=agent, tool=tool, environment="staging")
    request = ApprovalRequest.objects.get(grant=grant)
    assert response.status_code == 302 and response["Location"] == reverse("approvals:request", args=[request.pk])
    with django_capture_on_commit_callbacks(execute=True):
        decisions.request_attest(actor=world["reviewer"], request_id=request.pk)
    request.refresh_from_db()
    assert (request.tier, request.state) == ("low", "approved"), "a low-tier grant attested by someone else"
    page = html_of(client.get(reverse("catalog:agent", args=[agent.name])))
    assert 'data-testid="active-grant"' in page and f'href="/reviews/requests/{request.pk}/"' in page
    assert 'data-testid="active-grant"' in html_of(client.get(reverse("catalog:tool", args=[tool.name])))


def _panel_page(client: Any, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), html_of(response)


def test_it_shows_each_active_grant_with_its_approval_in_as_many_queries_for_six_grants_as_for_one(
    client: Any, world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = catalog.agent_create(
        actor=world["owner"],
        data={"name": "helper", "owner": "payments", "description": "Helps.", "autonomy_level": 1,
              "human_in_loop": "per_action", "data_class": "internal"},
    )  # fmt: skip

    def approved_grant(number: int) -> ApprovalRequest:
        grant, _ = catalog.grant_request(actor=world["owner"], agent=agent, tool=make_tool(f"t{number}"))
        request = submit(django_capture_on_commit_callbacks, world["owner"], kind="tool_grant", grant=grant)
        with django_capture_on_commit_callbacks(execute=True):
            decisions.request_attest(actor=world["reviewer"], request_id=request.pk)
        request.refresh_from_db()
        assert request.state == "approved"
        return request

    approvals = [approved_grant(0)]
    agent_url, tool_url = reverse("catalog:agent", args=[agent.name]), reverse("catalog:tool", args=["t0"])
    client.force_login(world["member"])
    client.get(agent_url), client.get(tool_url)  # content types are cached after a first request, as when running
    agent_few, _ = _panel_page(client, agent_url)
    tool_few, _ = _panel_page(client, tool_url)

    approvals += [approved_grant(number) for number in range(1, 6)]
    onboarding = submit(django_capture_on_commit_callbacks, world["owner"], kind="agent_onboarding", agent=agent)
    agent_many, page = _panel_page(client, agent_url)

    assert page.count('data-testid="active-grant"') == 6
    assert all(f'href="/reviews/requests/{request.pk}/">request #{request.pk}</a>' in page for request in approvals)
    assert f'href="/reviews/requests/{onboarding.pk}/">#{onboarding.pk} agent onboarding</a>' in page
    assert "Submit for onboarding</button>" not in page and "Request access</button>" not in page, "not a maintainer"
    assert agent_many == agent_few
    tool_many, tool_page = _panel_page(client, tool_url)
    assert f'href="/reviews/requests/{approvals[0].pk}/">request #{approvals[0].pk}</a>' in tool_page
    assert tool_many == tool_few


def test_it_creates_no_grant_when_the_tool_request_fails(client: Any, world: dict[str, Any], make_tool: Any) -> None:
    make_tool()
    agent = catalog.agent_create(actor=world["owner"], data={"name": "helper", "owner": "payments"})
    client.force_login(world["owner"])

    unknown = client.post(
        reverse("approvals:grant"), {"agent": agent.name, "tool": "nope", "environment": "prod"}, follow=True
    )
    bad_env = client.post(
        reverse("approvals:grant"),
        {"agent": agent.name, "tool": "inventory-api", "environment": "Not Valid!"},
        follow=True,
    )

    assert "There is no tool called" in html_of(unknown)
    assert "Environment" in html_of(bad_env) and 'class="message error"' in html_of(bad_env)
    assert not ToolGrant.objects.exists() and not ApprovalRequest.objects.exists()


def test_it_shows_a_teams_open_requests(client: Any, world: dict[str, Any], in_review: ApprovalRequest) -> None:
    client.force_login(world["member"])

    html = html_of(client.get(reverse("catalog:team", args=["payments"])))

    assert 'data-testid="open-request"' in html and f'href="/reviews/requests/{in_review.pk}/"' in html


# --- preferences -------------------------------------------------------------------------------------------------


def test_it_saves_my_email_preferences(client: Any, world: dict[str, Any]) -> None:
    client.force_login(world["reviewer"])

    response = client.post(reverse("approvals:preferences"), {"muted_events": ["reminder", "stage"]})

    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=world["reviewer"])
    assert (preference.email_enabled, preference.muted_events) == (False, ["reminder", "stage"])
    assert AuditEvent.objects.filter(action="approvals.preference.updated").exists()
    assert 'value="reminder"' in html_of(client.get(reverse("approvals:preferences")))


def test_it_refuses_a_metadata_webhook_url(client: Any, world: dict[str, Any]) -> None:
    team = world["team"]
    client.force_login(world["owner"])
    field = f"team-{team.pk}"

    response = client.post(
        reverse("approvals:preferences"),
        {"team": team.pk, f"{field}-url": "http://169.254.169.254/latest/meta-data/", f"{field}-chat_enabled": "on"},
    )

    html = html_of(response)
    assert response.status_code == 400
    assert 'data-testid="webhook-error"' in html and "is not accepted" in html and "169.254.169.254" in html
    assert Team.objects.get(pk=team.pk).chat_webhook_url == ""
    assert not AuditEvent.objects.filter(action="approvals.team_chat.updated").exists()


def test_it_saves_a_public_webhook_url_and_audits_it_without_the_secret(client: Any, world: dict[str, Any]) -> None:
    team = world["team"]
    client.force_login(world["owner"])
    field = f"team-{team.pk}"
    url = "https://93.184.215.14/services/T000/B000/secret-token"

    response = client.post(reverse("approvals:preferences"), {"team": team.pk, f"{field}-url": url})

    assert response.status_code == 302
    assert Team.objects.get(pk=team.pk).chat_webhook_url == url
    assert NotificationPreference.objects.get(team=team).chat_enabled is False
    event = AuditEvent.objects.get(action="approvals.team_chat.updated")
    assert "secret-token" not in str(event.changes)


def test_it_lets_only_maintainers_change_a_teams_chat(client: Any, world: dict[str, Any]) -> None:
    client.force_login(world["member"])

    page = html_of(client.get(reverse("approvals:preferences")))
    response = client.post(
        reverse("approvals:preferences"), {"team": world["team"].pk, f"team-{world['team'].pk}-url": ""}
    )

    assert "You maintain no team" in page
    assert response.status_code == 403


def test_rows_show_the_current_rounds_checks_without_loading_their_raw_output(
    world: dict[str, Any], in_review: ApprovalRequest
) -> None:
    from approvals import selectors
    from approvals.models import CheckRun

    current = {check.name for check in in_review.checks.filter(round=in_review.round)}
    CheckRun.objects.create(request=in_review, round=in_review.round + 1, name="old_or_next_round")  # another round
    loaded = selectors.current_checks(in_review)
    assert {check.name for check in loaded} == current
    assert all("output" in check.get_deferred_fields() for check in loaded)
    queued = selectors.review_queue(user=world["reviewer"]).get(pk=in_review.pk)
    with CaptureQueriesContext(connection) as queries:
        rows = selectors.current_checks(queued)
    assert len(queries) == 0  # the queue's prefetch answers
    assert {check.name for check in rows} == current
    assert all("output" in check.get_deferred_fields() for check in rows)
