"""An owner raises an agent's autonomy to 5 in the edit form: the level stays, the page says which request holds the
raise, the agent page shows it waiting with its runtime evidence, and the request shows reviewers the change."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conftest import DEMO_PASSWORD


@pytest.mark.usefixtures("eager_celery")
def test_a_raise_to_full_autonomy_waits_for_approval(
    page: Page, live_server: Any, login: Any, make_user: Any, make_team: Any
) -> None:
    from catalog import services as catalog

    owner = make_user("olivia")
    make_team("payments", maintainers=[owner])
    catalog.agent_create(
        actor=owner,
        data={
            "name": "billing-bot",
            "owner": "payments",
            "title": "Billing bot",
            "description": "Bills customers.",
            "autonomy_level": 3,
            "human_in_loop": "per_action",
            "data_class": "internal",
        },
    )
    login(page, "olivia", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/catalog/agents/billing-bot/")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Autonomy level").select_option("5")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Autonomy 5 requested: request #\d+"))
    waiting = page.get_by_test_id("autonomy-request")
    expect(waiting).to_contain_text("Autonomy 3 → 5 requested")
    expect(waiting).to_contain_text("the agent keeps level 3 until it is approved")
    expect(waiting).to_contain_text("Runtime evidence")

    waiting.get_by_role("link", name=re.compile(r"request #\d+")).click()
    expect(page).to_have_url(re.compile(r"/reviews/requests/\d+/"))
    change = page.get_by_test_id("proposed-change")
    expect(change).to_have_count(1)
    expect(change.get_by_role("rowheader")).to_contain_text(re.compile("autonomy", re.IGNORECASE))
    expect(change.get_by_role("cell")).to_have_text([re.compile("3"), re.compile("5")])
