"""Find a tool by typing, read why it has its risk tier, edit it as its owner and see the tier follow."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from conftest import DEMO_PASSWORD


def _catalog(make_user: Any, make_team: Any) -> None:
    from catalog import services

    owner = make_user("olivia")
    team = make_team("platform", maintainers=[owner])
    docs = services.tool_create(
        actor=None,
        data={
            "name": "docs-search",
            "owner": team.name,
            "title": "Docs search",
            "description": "Searches the **internal** handbook.",
            "kind": "mcp_server",
            "data_class": "public",
            "reach": "closed",
            "credential_scope": "none",
            "capabilities": [{"name": "search_docs", "read_only": True, "open_world": False}],
        },
    )
    services.tool_attest_annotations(tool=docs)
    services.tool_create(
        actor=None,
        data={"name": "jira", "owner": team.name, "title": "Jira", "kind": "saas", "capabilities": []},
    )
    services.agent_create(actor=None, data={"name": "helper", "owner": team.name, "title": "Helper"})


def test_it_finds_reads_and_edits_a_tool(
    page: Page, live_server: Any, login: Any, make_user: Any, make_team: Any
) -> None:
    _catalog(make_user, make_team)
    login(page, "olivia", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/catalog/")
    expect(page.get_by_test_id("result-count")).to_have_text("3")

    page.get_by_role("searchbox", name="Search the catalog").press_sequentially("docs", delay=30)
    expect(page.get_by_test_id("result-count")).to_have_text("1")
    expect(page).to_have_url(re.compile(r"/catalog/\?.*q=docs"))
    page.get_by_role("link", name="docs-search").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Docs search")
    risk = page.get_by_test_id("risk")
    expect(page.get_by_test_id("risk-tier")).to_have_text("low")
    expect(risk.get_by_role("row", name=re.compile("Data class"))).to_contain_text("public data")
    expect(risk.get_by_role("row", name=re.compile("Write capability"))).to_contain_text("read-only")
    expect(risk.get_by_role("row", name=re.compile("Credential scope"))).to_contain_text("no credentials")
    expect(risk.get_by_test_id("risk-factor")).to_have_count(6)

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Title").fill("Handbook search")
    page.get_by_label("Data class").select_option("restricted")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("status")).to_contain_text("Tool “docs-search” saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Handbook search")
    expect(page.get_by_test_id("risk-tier")).to_have_text("medium")
    expect(risk.get_by_role("row", name=re.compile("Data class"))).to_contain_text("restricted data")
    expect(page.get_by_test_id("fact-data-class")).to_have_text("Restricted")
    expect(page.get_by_test_id("unverified-hints")).to_have_count(0)


def test_it_keeps_the_whole_search_in_the_url_and_the_back_button_works(
    page: Page, live_server: Any, login: Any, make_user: Any, make_team: Any
) -> None:
    _catalog(make_user, make_team)
    login(page, "olivia", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/catalog/")
    count = page.get_by_test_id("result-count")
    expect(count).to_have_text("3")

    page.get_by_test_id("facet-kind-tool").click()
    expect(count).to_have_text("2")
    expect(page).to_have_url(re.compile(r"kind=tool"))
    page.get_by_role("searchbox", name="Search the catalog").press_sequentially("jira", delay=30)
    expect(count).to_have_text("1")
    expect(page).to_have_url(re.compile(r"(?=.*kind=tool)(?=.*q=jira)"))
    expect(page.get_by_role("list", name="Active filters")).to_contain_text("Kind: tool")

    page.go_back()
    expect(count).to_have_text("2")
    page.reload()
    expect(count).to_have_text("2")
    expect(page.get_by_test_id("facet-kind-tool")).to_have_class("selected")
