"""The demo portal at desktop and phone width: no page is wider than the screen, values read as labels, activity
reads as sentences, the navbar is legible, a new token can be copied, the favicon and the API docs load locally."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from portal.management.commands.seed_demo import DEMO_PASSWORD

WIDTHS = {"desktop": 1280, "phone": 390}
RAW_VALUES = re.compile(r"\b(pending_review|code_review|in_review|changes_requested|request_changes|self_hosted)\b")


@pytest.fixture
def demo(transactional_db: None, live_server: Any) -> dict[str, Any]:
    """The same demo catalog `make run` shows, with an e-mail backend kept in memory."""
    from approvals.models import Decision

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115 (closed with the process)
    decided = Decision.objects.filter(outcome=Decision.Outcome.APPROVE).select_related("request").first()
    assert decided is not None, "the demo data has an approved decision"
    return {"decided_request": decided.request_id}


def _page_at(browser: Browser, width: int, live_server: Any, username: str = "admin") -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_have_text(username)
    return page


def _overflow(page: Page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_no_page_is_wider_than_the_screen_and_values_read_as_labels(
    browser: Browser, live_server: Any, demo: dict[str, Any], width: int
) -> None:
    page = _page_at(browser, width, live_server)
    pages = [
        "/",
        "/catalog/",
        "/catalog/tools/github-mcp/",
        "/catalog/agents/pr-reviewer/",
        "/catalog/teams/payments/",
        "/reviews/",
        "/reviews/mine/",
        f"/reviews/requests/{demo['decided_request']}/",
        "/create/",
        "/create/python-agent/",
        "/tokens/",
        "/audit/",
    ]
    for path in pages:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        scroll_width, inner_width = _overflow(page)
        assert scroll_width <= inner_width, f"{path} is {scroll_width} px wide at {inner_width} px"
        # Codes shown as codes (the audit page's action, hashes, names) are not labels.
        text = page.evaluate(
            "() => { document.querySelectorAll('code, pre').forEach((el) => { el.style.display = 'none'; });"
            " return document.body.innerText; }"
        )
        assert not RAW_VALUES.search(text), f"{path} shows a stored value: {RAW_VALUES.search(text)}"

    page.goto(f"{live_server.url}/catalog/")
    rows = page.get_by_test_id("catalog-row")
    expect(rows.filter(has_text="jira-mcp")).to_contain_text("Production · Pending review")
    for count in page.locator(".facets .count").all():  # facet counts fully inside the screen, not cut off
        box = count.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
    page.goto(f"{live_server.url}/catalog/agents/pr-reviewer/")
    facts = page.locator("section[aria-labelledby=facts-h]")
    expect(facts).to_contain_text("Code review")
    risk_class = page.get_by_test_id("risk-factor").filter(has_text="Data class").locator("td").nth(1).inner_text()
    assert risk_class.lower().startswith(page.get_by_test_id("fact-data-class").inner_text().split("\n")[0].lower())


def test_timeline_and_audit_read_as_sentences(browser: Browser, live_server: Any, demo: dict[str, Any]) -> None:
    page = _page_at(browser, 390, live_server)
    page.goto(f"{live_server.url}/reviews/requests/{demo['decided_request']}/")
    sentences = page.get_by_test_id("timeline-text").all_inner_texts()
    assert any(re.fullmatch(r"\S+ approved stage \S.*", s) for s in sentences), sentences
    assert not any(re.search(r"\w\.\w+_?\w*\.\w", s) for s in sentences), "no dotted action codes"
    page.goto(f"{live_server.url}/audit/")
    audit = page.get_by_test_id("audit-text").all_inner_texts()
    assert any(" approved stage " in line for line in audit), audit[:10]
    assert any(re.search(r"changed the status of (agent|tool) \S+ from \w", line) for line in audit)
    page.goto(f"{live_server.url}/catalog/tools/github-mcp/")
    history = page.get_by_test_id("history-text").all_inner_texts()
    assert history and all(not re.search(r"catalog\.\w+\.", line) for line in history), history


def test_the_navbar_text_has_at_least_4_5_to_1_contrast(browser: Browser, live_server: Any, demo: Any) -> None:
    page = _page_at(browser, 1280, live_server)
    ratios = page.evaluate(
        """() => {
          const rgb = (c) => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
          const lum = (c) => { const [r, g, b] = rgb(c).map((v) => { v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
          const bg = getComputedStyle(document.querySelector('.topbar')).backgroundColor;
          return [...document.querySelectorAll('.topbar a, .topbar span, .topbar button')].map((el) => {
            const [a, b] = [lum(getComputedStyle(el).color), lum(bg)].sort((x, y) => y - x);
            return [el.textContent.trim(), (a + 0.05) / (b + 0.05)];
          });
        }"""
    )
    assert len(ratios) >= 6
    low = [(text, round(ratio, 2)) for text, ratio in ratios if ratio < 4.5]
    assert not low, f"navbar text under 4.5:1: {low}"


def test_a_new_token_has_a_copy_button_and_the_page_a_favicon(browser: Browser, live_server: Any, demo: Any) -> None:
    page = _page_at(browser, 390, live_server, username="alice")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/tokens/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-token").inner_text()
    assert secret.startswith("ap_")
    page.get_by_test_id("copy-token").click()
    expect(page.get_by_test_id("copy-token")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon and icon.startswith("/static/")
    response = page.request.get(f"{live_server.url}{icon}")
    assert response.status == 200 and "svg" in response.headers["content-type"]


def test_the_api_docs_render_from_local_assets_only(page: Page, live_server: Any, transactional_db: None) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Agent Portal API", timeout=20_000)
    expect(page.locator(".opblock-tag").first).to_be_visible()
    foreign = [url for url in requested if not url.startswith((live_server.url, "data:"))]
    assert not foreign, f"requests outside the portal: {foreign}"
    assert not [e for e in errors if "Content Security Policy" in e], errors
