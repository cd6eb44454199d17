from typing import Any

from playwright.sync_api import Page, expect

from conftest import DEMO_PASSWORD


def test_it_logs_in_shows_the_dashboard_and_logs_out(page: Page, live_server: Any, make_user: Any, login: Any) -> None:
    make_user("alice")

    login(page, "alice", "wrong-password")
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")

    login(page, "alice", DEMO_PASSWORD)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_test_id("current-user")).to_have_text("alice")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Catalog")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
