"""A security reviewer reads why two requests are medium risk, approves one and rejects the other with a comment;
the requester then finds both outcomes under "My requests"."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from conftest import DEMO_PASSWORD

REJECTION = "Pin the package version and drop the write scope, then resubmit."


def _two_requests_in_review(make_user: Any, make_team: Any) -> dict[str, Any]:
    from approvals import submitting
    from catalog import services as catalog
    from portal.roles import SECURITY_REVIEWER

    owner = make_user("olive")
    make_user("rita", roles=[SECURITY_REVIEWER])
    make_team("payments", maintainers=[owner])
    requests = {}
    for name in ("inventory-api", "ledger-api"):
        tool = catalog.tool_create(
            actor=owner,
            data={
                "name": name,
                "owner": "payments",
                "kind": "cli",
                "version": "1.2.3",
                "description": f"Reads the {name.split('-')[0]}.",
                "data_class": "internal",
                "reach": "allowlisted",
                "credential_scope": "none",
                "capabilities": [{"name": "list_items", "read_only": True, "open_world": False}],
            },
        )
        tool = catalog.tool_attest_annotations(tool=tool)
        # The live server's database commits each step, so the checks run (eagerly) as soon as this returns.
        request = submitting.request_submit(actor=owner, kind="tool_onboarding", tool=tool)
        request.refresh_from_db()
        assert (request.tier, request.state) == ("medium", "in_review")
        requests[name] = request
    return requests


@pytest.mark.usefixtures("eager_celery")
def test_it_reviews_two_requests_and_the_requester_sees_both_outcomes(
    page: Page, live_server: Any, login: Any, make_user: Any, make_team: Any
) -> None:
    requests = _two_requests_in_review(make_user, make_team)
    approved, rejected = requests["inventory-api"], requests["ledger-api"]
    csp_violations: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            csp_violations.append(message.text)

    page.on("console", watch)

    login(page, "rita", DEMO_PASSWORD)
    page.get_by_role("link", name="Reviews").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Awaiting my review")
    expect(page.get_by_test_id("queue-count")).to_have_text("2")

    first = page.locator(f"#request-{approved.pk}")
    expect(first.get_by_test_id("request-tier")).to_have_text("medium")
    expect(first.get_by_test_id("request-factor").filter(has_text="Data class")).to_contain_text("internal data")
    expect(first.get_by_test_id("request-factor").filter(has_text="Reach")).to_be_visible()
    expect(first.get_by_test_id("check")).to_have_count(6)

    first.get_by_role("button", name="Approve").click()
    expect(first.get_by_test_id("row-outcome")).to_contain_text("Approved, valid until")
    expect(page).to_have_url(re.compile(r"/reviews/$"))  # htmx swapped the row; the page stayed

    second = page.locator(f"#request-{rejected.pk}")
    second.get_by_label("Comment").fill(REJECTION)
    second.get_by_role("button", name="Reject").click()
    expect(second.get_by_test_id("row-outcome")).to_contain_text("Rejected")

    page.get_by_role("button", name="Log out").click()
    login(page, "olive", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/reviews/mine/")
    expect(page.get_by_role("heading", level=1)).to_have_text("My requests")
    mine = page.get_by_test_id("my-request")
    expect(mine).to_have_count(2)
    expect(mine.filter(has_text="inventory-api").get_by_test_id("request-state")).to_have_text("Approved")
    rejected_row = mine.filter(has_text="ledger-api")
    expect(rejected_row.get_by_test_id("request-state")).to_have_text("Rejected")
    expect(rejected_row.get_by_test_id("decision-comment")).to_contain_text(REJECTION)

    rejected_row.get_by_role("link", name=re.compile("ledger-api")).click()
    expect(page.get_by_test_id("timeline")).to_contain_text(REJECTION)
    assert csp_violations == []
