from __future__ import annotations

from typing import Any

import pytest

from runtime.models import Finding
from runtime.tests.otlp_builders import as_json, chat, tool_call

pytestmark = pytest.mark.django_db
SERVER = "io.github.example/github"


@pytest.fixture
def seen(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> Any:
    secret, _ = telemetry_token()
    spans = [
        tool_call("billing-bot", "delete_repo", server=SERVER),
        tool_call("billing-bot", "create_issue", server=SERVER),
    ]
    spans += [chat("billing-bot", "gpt-4o")]
    assert post_spans(as_json(spans), secret).status_code == 200
    return catalog_setup


def test_the_agent_page_shows_its_calls_findings_and_usage(seen: Any, client: Any) -> None:
    client.force_login(seen["alice"])
    page = client.get("/catalog/agents/billing-bot/").content.decode()
    assert 'data-testid="runtime-panel"' in page
    assert "capability outside the grant" in page
    assert 'data-testid="usage-tools"' in page and "create_issue (1)" in page and "gpt-4o" in page


def test_the_tool_page_lists_findings_against_it(seen: Any, client: Any) -> None:
    client.force_login(seen["alice"])
    page = client.get("/catalog/tools/github/").content.decode()
    assert "capability outside the grant" in page and "billing-bot" in page
    assert 'data-testid="tool-callers"' in page


def test_the_findings_page_filters_and_a_maintainer_resolves_in_one_click(seen: Any, client: Any) -> None:
    client.force_login(seen["alice"])
    page = client.get("/runtime/findings/", {"kind": "capability_not_granted"}).content.decode()
    assert page.count('data-testid="finding-row"') == 1
    finding = Finding.objects.get()
    detail = client.get(f"/runtime/findings/{finding.pk}/").content.decode()
    assert 'value="request_grant"' in detail
    response = client.post(f"/runtime/findings/{finding.pk}/action/", {"action": "resolve", "reason": "agent fixed"})
    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.state == "resolved" and finding.closed_by == seen["alice"]


def test_an_outsider_cannot_act_on_a_finding(seen: Any, client: Any, make_user: Any) -> None:
    client.force_login(make_user("mallory"))
    finding = Finding.objects.get()
    assert 'value="resolve"' not in client.get(f"/runtime/findings/{finding.pk}/").content.decode()
    assert client.post(f"/runtime/findings/{finding.pk}/action/", {"action": "resolve"}).status_code == 403


def test_a_telemetry_token_bound_to_an_agent_from_the_tokens_page(seen: Any, client: Any) -> None:
    from portal.models import ApiToken

    client.force_login(seen["alice"])
    response = client.post(
        "/tokens/", {"name": "billing otel", "scopes": ["telemetry"], "expires_in_days": 30, "agent": "billing-bot"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="billing otel")
    assert token.bound_agent_id == seen["agent"].pk and token.subject == "billing-bot"


def test_the_runtime_pages_are_reachable_from_every_page(seen: Any, client: Any) -> None:
    client.force_login(seen["alice"])
    home = client.get("/").content.decode()
    assert 'href="/runtime/findings/"' in home
    for path, current in [
        ("/runtime/findings/", "Findings"),
        ("/runtime/scorecards/", "Scorecards"),
        ("/runtime/kpis/", "KPIs"),
    ]:
        page = client.get(path).content.decode()
        subnav = page[page.index('data-testid="runtime-nav"') :]
        subnav = subnav[: subnav.index("</nav>")]
        assert all(
            f'href="{target}"' in subnav for target in ("/runtime/findings/", "/runtime/scorecards/", "/runtime/kpis/")
        )
        assert f'aria-current="page">{current}</a>' in subnav
