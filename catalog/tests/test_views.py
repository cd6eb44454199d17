"""Catalog pages: search, facets, htmx partials, entity pages, edit permissions, imports."""

from __future__ import annotations

import re
import textwrap
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from guardian.shortcuts import assign_perm, remove_perm

from catalog import services
from catalog.forms import capability_line, parse_capabilities
from catalog.models import Agent, CatalogEntry, Tool, ToolGrant
from catalog.teams import team_set_member

pytestmark = pytest.mark.django_db

CAPABILITIES = [
    {"name": "list_issues", "read_only": True, "destructive": False, "open_world": False},
    {"name": "delete_repo", "read_only": False, "destructive": True, "idempotent": True},
]


@pytest.fixture
def owner(make_user: Any) -> Any:
    return make_user("olivia")


@pytest.fixture
def team(make_team: Any, owner: Any) -> Any:
    return make_team("platform", maintainers=[owner])


def make_tool(team: Any, name: str = "github", **data: Any) -> Tool:
    values = {
        "name": name,
        "owner": team.name,
        "title": f"{name.title()} server",
        "description": f"Talks to {name}.",
        "kind": "mcp_server",
        "data_class": "internal",
        "reach": "allowlisted",
        "credential_scope": "delegated",
        "capabilities": CAPABILITIES,
        "tags": ["scm"],
        **data,
    }
    return services.tool_create(actor=None, data=values)


def make_agent(team: Any, name: str = "helper", **data: Any) -> Agent:
    values = {
        "name": name,
        "owner": team.name,
        "title": f"{name.title()} agent",
        "description": "Helps.",
        "autonomy_level": 3,
        "human_in_loop": "per_action",
        "data_class": "internal",
        **data,
    }
    return services.agent_create(actor=None, data=values)


def html_of(response: Any) -> str:
    return response.content.decode()


# --- catalog page ----------------------------------------------------------------------------------------------


def test_it_renders_the_catalog_with_facets_and_results(client: Any, owner: Any, team: Any) -> None:
    make_tool(team, "github")
    make_agent(team, "helper")
    client.force_login(owner)

    response = client.get(reverse("catalog:index"))

    html = html_of(response)
    assert response.status_code == 200
    assert 'data-testid="result-count">2<' in html
    assert 'href="/catalog/tools/github/"' in html
    assert 'href="/catalog/agents/helper/"' in html
    for facet in ("Kind", "Risk tier", "Owner", "Lifecycle", "Status", "Data class"):
        assert f">{facet}</h3>" in html
    assert 'data-testid="facet-kind-tool"' in html
    assert re.search(r'class="badge tier tier-\w+" title="\w+: ', html), "tier badge explains itself on hover"
    assert 'href="/catalog/import/"' in html
    assert ">New agent</a>" in html and ">New tool</a>" in html


def test_it_hides_the_new_buttons_from_people_who_maintain_no_team(client: Any, make_user: Any, team: Any) -> None:
    client.force_login(make_user("bob"))

    html = html_of(client.get(reverse("catalog:index")))

    assert ">New agent</a>" not in html
    assert 'href="/catalog/import/"' in html


def test_it_narrows_results_by_search(client: Any, owner: Any, team: Any) -> None:
    make_tool(team, "github", capabilities=[{"name": "merge_pull_request", "read_only": False}])
    make_tool(team, "jira")
    make_agent(team, "helper")
    client.force_login(owner)

    by_name = html_of(client.get(reverse("catalog:index"), {"q": "jira"}))
    by_capability = html_of(client.get(reverse("catalog:index"), {"q": "merge_pull_request"}))

    assert 'data-testid="result-count">1<' in by_name
    assert "/catalog/tools/jira/" in by_name and "/catalog/tools/github/" not in by_name
    assert 'data-testid="result-count">1<' in by_capability
    assert "/catalog/tools/github/" in by_capability


def test_it_filters_by_following_a_facet_link_and_removes_it_again(client: Any, owner: Any, team: Any) -> None:
    make_tool(team, "github")
    make_agent(team, "helper")
    client.force_login(owner)
    html = html_of(client.get(reverse("catalog:index")))
    href = re.search(r'<a href="([^"]+)" hx-get="[^"]+" data-testid="facet-kind-agent"', html)
    assert href, html

    filtered = client.get(href.group(1).replace("&amp;", "&"))

    filtered_html = html_of(filtered)
    assert filtered.wsgi_request.GET.getlist("kind") == ["agent"]
    assert 'data-testid="result-count">1<' in filtered_html
    assert "/catalog/agents/helper/" in filtered_html and "/catalog/tools/github/" not in filtered_html
    assert 'class="selected" aria-current="true"' in filtered_html
    assert '<input type="hidden" name="kind" value="agent">' in filtered_html, "the search form keeps the filter"
    removal = re.search(r'<a href="([^"]+)" hx-get="[^"]+" class="selected"', filtered_html)
    assert removal and "kind=agent" not in removal.group(1)


def test_it_returns_only_the_results_partial_to_htmx(client: Any, owner: Any, team: Any) -> None:
    make_tool(team, "github")
    client.force_login(owner)

    response = client.get(reverse("catalog:index"), {"q": "github"}, HTTP_HX_REQUEST="true")

    html = html_of(response)
    assert response.status_code == 200
    assert "<html" not in html and "<form" not in html
    assert 'data-testid="result-count">1<' in html
    assert 'id="catalog-state" hx-swap-oob="true"' in html
    assert "HX-Request" in response["Vary"]


def test_it_serves_the_whole_page_to_an_htmx_history_restore(client: Any, owner: Any, team: Any) -> None:
    client.force_login(owner)

    html = html_of(client.get(reverse("catalog:index"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"))

    assert "<html" in html


def test_it_pages_through_results(client: Any, owner: Any, team: Any) -> None:
    for number in range(5):
        make_agent(team, f"agent-{number}")
    client.force_login(owner)

    first = html_of(client.get(reverse("catalog:index"), {"page_size": 2, "sort": "name"}))
    last = html_of(client.get(reverse("catalog:index"), {"page_size": 2, "sort": "name", "page": 3}))

    assert "Page 1 of 3" in first and 'rel="next"' in first and 'rel="prev"' not in first
    assert "agent-0" in first and "agent-2" not in first
    assert "Page 3 of 3" in last and "agent-4" in last and 'rel="next"' not in last


def _catalog_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("catalog:index"), {"page_size": 100})
    assert response.status_code == 200
    return len(queries)


def test_it_runs_the_same_number_of_queries_for_3_and_30_entries(
    client: Any, owner: Any, team: Any, make_team: Any
) -> None:
    other = make_team("other", maintainers=[owner])
    client.force_login(owner)
    for number in range(3):
        make_tool(team if number % 2 else other, f"tool-{number}")
        make_agent(team, f"agent-{number}")
    few = _catalog_queries(client)

    for number in range(3, 30):
        make_tool(team if number % 2 else other, f"tool-{number}")
        make_agent(other, f"agent-{number}", tags=[f"t{number}"])
    many = _catalog_queries(client)

    assert CatalogEntry.objects.count() == 60
    assert many == few


# --- entity pages ----------------------------------------------------------------------------------------------


def test_it_shows_every_risk_factor_of_a_tool_in_words(client: Any, owner: Any, team: Any) -> None:
    tool = make_tool(team)
    client.force_login(owner)

    html = html_of(client.get(reverse("catalog:tool", args=[tool.name])))

    for factor in tool.risk["factors"]:
        assert factor["label"] in html
    for name in ("Data class", "Write capability", "Reach", "Autonomy level", "Human in the loop", "Credential scope"):
        assert f'<th scope="row">{name}</th>' in html
    assert "internal data" in html
    assert "destructive writes at autonomy level 4+ with no human in the loop" in html, "floors are listed"
    assert f"rubric {tool.risk['rubric_version']}" in html
    assert 'data-testid="unverified-hints"' in html
    assert ">read-only</span>" in html and ">destructive</span>" in html and ">not open-world</span>" in html
    assert 'href="/catalog/teams/platform/"' in html
    assert "catalog.tool.created" in html, "history from the audit trail"
    assert ">Edit</a>" in html


def test_it_shows_an_agents_grants_and_factors(client: Any, owner: Any, team: Any) -> None:
    tool = make_tool(team)
    agent = make_agent(team, autonomy_level=None, calls=[])
    grant, _ = services.grant_request(actor=owner, agent=agent, tool=tool, environment="staging")
    services.grant_set_status(grant=grant, status=ToolGrant.Status.APPROVED)
    agent.refresh_from_db()
    client.force_login(owner)

    html = html_of(client.get(reverse("catalog:agent", args=[agent.name])))

    for factor in agent.risk["factors"]:
        assert factor["label"] in html
    assert "driven by the grant to tool github" in html
    assert 'href="/catalog/tools/github/"' in html
    assert "staging" in html and "Approved" in html
    assert "unknown (counted as 5)" in html


def test_it_renders_descriptions_without_scripts_or_javascript_links(client: Any, owner: Any, team: Any) -> None:
    tool = make_tool(team)
    agent = make_agent(team)
    evil = "**Bold** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)> [ok](https://ok.example)"
    Tool.objects.filter(pk=tool.pk).update(description=evil)
    Agent.objects.filter(pk=agent.pk).update(description=evil)
    client.force_login(owner)

    for url in (reverse("catalog:tool", args=[tool.name]), reverse("catalog:agent", args=[agent.name])):
        html = html_of(client.get(url))
        description = html.split('data-testid="description">', 1)[1].split("</div>", 1)[0]
        assert "<strong>Bold</strong>" in description
        assert "<script" not in html.lower().replace('<script src="/static/', "")
        assert "<img" not in description and "onerror=" not in description.replace("onerror=alert(1)&gt;", "")
        assert 'href="javascript' not in html.lower()
        assert '<a href="https://ok.example" rel="noopener noreferrer nofollow">ok</a>' in description


def test_it_answers_404_for_an_unknown_entity(client: Any, owner: Any) -> None:
    client.force_login(owner)

    assert client.get(reverse("catalog:tool", args=["nope"])).status_code == 404
    assert client.get(reverse("catalog:agent", args=["nope"])).status_code == 404
    assert client.get(reverse("catalog:team", args=["nope"])).status_code == 404


def _detail_queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


# Session, user, the entity with its owner, its models with the agents it calls and those calling it (agent, one
# query) or its capabilities (tool), its grants, the viewer's roles, whether they maintain the owner (read once for
# editing and filing requests), their object permissions (guardian's one query: none for a maintainer, who is
# answered first), its history, its approval requests (newest and open, read once for the approvals and runtime
# panels) and the approvals behind its active grants.
PAGE_QUERIES = {("agent", "maintainer"): 10, ("tool", "maintainer"): 10, ("agent", "stranger"): 11}
PAGE_QUERIES[("tool", "stranger")] = PAGE_QUERIES[("agent", "stranger")]
# The runtime panel: open findings, scorecard, and tool and model usage (agent) or callers (tool); and what each
# active grant covers (the capabilities of its tool: read on an agent's page; a tool's page has them already).
RUNTIME_PANEL_QUERIES = {"agent": 4, "tool": 3}
COVERAGE_QUERIES = {"agent": 1, "tool": 0}


@pytest.mark.parametrize("viewer", ["maintainer", "stranger"])
def test_it_keeps_entity_page_queries_few_and_flat_as_grants_models_neighbours_and_history_grow(
    client: Any, owner: Any, team: Any, make_team: Any, make_user: Any, viewer: str
) -> None:
    client.force_login(owner if viewer == "maintainer" else make_user("sam"))
    agent = make_agent(team)
    first = make_tool(team, "tool-0", capabilities=[{"name": "cap-0"}])
    grant, _ = services.grant_request(actor=owner, agent=agent, tool=first)
    services.grant_set_status(grant=grant, status=ToolGrant.Status.APPROVED)
    agent_url = reverse("catalog:agent", args=[agent.name])
    tool_url = reverse("catalog:tool", args=[first.name])
    client.get(agent_url), client.get(tool_url)  # content types are cached after a first request, as when running
    assert (
        _detail_queries(client, agent_url)
        == PAGE_QUERIES[("agent", viewer)] + RUNTIME_PANEL_QUERIES["agent"] + COVERAGE_QUERIES["agent"]
    )
    assert (
        _detail_queries(client, tool_url)
        == PAGE_QUERIES[("tool", viewer)] + RUNTIME_PANEL_QUERIES["tool"] + COVERAGE_QUERIES["tool"]
    )

    other_team = make_team("other")
    for number in range(1, 8):
        tool = make_tool(other_team, f"tool-{number}")
        grant, _ = services.grant_request(actor=owner, agent=agent, tool=tool, environment="staging")
        services.grant_set_status(grant=grant, status=ToolGrant.Status.APPROVED)
        helper = make_agent(other_team, f"user-{number}", calls=[agent.name])
        services.grant_request(actor=None, agent=helper, tool=first, environment="staging")
        services.model_upsert(data={"name": f"model-{number}", "provider": "acme"})
    services.tool_update(
        actor=None, tool=first, data={"capabilities": [{"name": f"cap-{n}", "read_only": True} for n in range(12)]}
    )
    for number in range(5):
        agent = services.agent_update(
            actor=None,
            agent=agent,
            data={
                "version": f"1.{number}",
                "models": [f"model-{n}" for n in range(1, 8)],
                "calls": ["user-1", "user-2"],
            },
        )

    agent_html = html_of(client.get(agent_url))
    assert agent_html.count('data-testid="grant"') == 8 and agent_html.count('data-testid="active-grant"') == 8
    assert all(f"model-{n} <span" in agent_html for n in range(1, 8)), "every model, with its provider"
    assert agent_html.count('href="/catalog/agents/user-') == 7 + 2, "seven callers, two called"
    assert agent_html.count("catalog.agent.updated") >= 5
    assert html_of(client.get(tool_url)).count('data-testid="grant"') == 8
    assert (
        _detail_queries(client, agent_url)
        == PAGE_QUERIES[("agent", viewer)] + RUNTIME_PANEL_QUERIES["agent"] + COVERAGE_QUERIES["agent"]
    )
    assert (
        _detail_queries(client, tool_url)
        == PAGE_QUERIES[("tool", viewer)] + RUNTIME_PANEL_QUERIES["tool"] + COVERAGE_QUERIES["tool"]
    )


def test_it_shows_the_edit_link_to_the_owning_teams_maintainers_and_platform_admins_only(
    client: Any, owner: Any, team: Any, make_team: Any, make_user: Any
) -> None:
    tool, agent = make_tool(team), make_agent(team)
    stranger = make_user("sam")
    make_team("other", maintainers=[stranger])
    member = make_user("mia")
    team_set_member(team=team, user=member, role="member")
    admin = make_user("ada", roles=["platform-admin"])

    for user, may_edit in ((owner, True), (admin, True), (stranger, False), (member, False)):
        client.force_login(user)
        for kind, entity in (("agent", agent), ("tool", tool)):
            edit_url = reverse(f"catalog:{kind}-edit", args=[entity.name])
            page = html_of(client.get(reverse(f"catalog:{kind}", args=[entity.name])))
            assert (f'href="{edit_url}">Edit</a>' in page) is may_edit, (user.username, kind)
            assert client.get(edit_url).status_code == (200 if may_edit else 403), (user.username, kind)

    client.force_login(stranger)
    assert client.post(reverse("catalog:tool-edit", args=[tool.name]), {"title": "Mine now"}).status_code == 403
    tool.refresh_from_db()
    assert tool.title == "Github server"


def test_it_shows_the_edit_link_to_the_owners_maintainers_and_to_explicit_grantees_only(
    client: Any, owner: Any, team: Any, make_user: Any
) -> None:
    from catalog.teams import team_set_member

    tool = make_tool(team)
    holder, member = make_user("dora"), make_user("mia")
    assign_perm("catalog.change_tool", holder, tool)
    team_set_member(team=team, user=member, role="member")
    edit_link = f'href="{reverse("catalog:tool-edit", args=[tool.name])}">Edit</a>'

    for user, sees in ((owner, True), (holder, True), (member, False)):
        client.force_login(user)
        assert (edit_link in html_of(client.get(reverse("catalog:tool", args=[tool.name])))) is sees, user.username
    remove_perm("catalog.change_tool", holder, tool)
    client.force_login(holder)
    assert edit_link not in html_of(client.get(reverse("catalog:tool", args=[tool.name])))


def test_it_shows_a_team_with_its_entities_members_and_open_requests(
    client: Any, owner: Any, team: Any, make_user: Any
) -> None:
    make_tool(team)
    make_agent(team)
    member = make_user("mia", first_name="Mia", last_name="Member")
    from catalog.teams import team_set_member

    team_set_member(team=team, user=member)
    client.force_login(member)

    html = html_of(client.get(reverse("catalog:team", args=[team.name])))

    assert 'href="/catalog/tools/github/"' in html and 'href="/catalog/agents/helper/"' in html
    assert "Mia Member" in html and "olivia" in html
    assert ">Maintainer</span>" in html and ">Member</span>" in html
    assert "Open requests" in html and "No open requests." in html
    assert ">New agent</a>" not in html, "members who do not maintain the team cannot add to it"


# --- create and edit -------------------------------------------------------------------------------------------


def _tool_post(tool: Tool, **changes: Any) -> dict[str, Any]:
    data = {
        "owner": tool.owner.name,
        "title": tool.title,
        "description": tool.description,
        "kind": tool.kind,
        "lifecycle": tool.lifecycle,
        "data_class": tool.data_class or "",
        "reach": tool.reach or "",
        "credential_scope": tool.credential_scope or "",
        "capabilities": "\n".join(capability_line(cap) for cap in tool.capabilities.all()),
        "tags": ", ".join(tool.tags),
        "secrets": "",
        "links": "",
    }
    data.update(changes)
    return data


def test_it_refuses_edits_from_people_outside_the_owning_team(client: Any, make_user: Any, team: Any) -> None:
    tool = make_tool(team)
    agent = make_agent(team)
    client.force_login(make_user("mallory"))

    tool_url = reverse("catalog:tool-edit", args=[tool.name])
    agent_url = reverse("catalog:agent-edit", args=[agent.name])
    assert client.get(tool_url).status_code == 403
    assert client.get(agent_url).status_code == 403
    refused = client.post(tool_url, _tool_post(tool, title="Hijacked", data_class="public"))
    assert refused.status_code == 403
    assert "Not allowed" in html_of(refused)
    assert (
        client.post(agent_url, {"owner": team.name, "title": "Hijacked", "lifecycle": "production"}).status_code == 403
    )

    tool.refresh_from_db()
    agent.refresh_from_db()
    assert (tool.title, tool.data_class) == ("Github server", "internal")
    assert agent.title == "Helper agent"
    html = html_of(client.get(reverse("catalog:tool", args=[tool.name])))
    assert ">Edit</a>" not in html


def test_it_fills_the_edit_form_with_the_current_values(client: Any, owner: Any, team: Any) -> None:
    tool = make_tool(team, secrets=["GITHUB_TOKEN"], links=[{"url": "https://docs.example", "title": "Docs"}])
    client.force_login(owner)

    form = client.get(reverse("catalog:tool-edit", args=[tool.name])).context["form"]

    assert form["title"].value() == "Github server"
    assert form["reach"].value() == "allowlisted" and form["credential_scope"].value() == "delegated"
    assert form["capabilities"].value() == (
        "delete_repo: not read_only, destructive, idempotent\nlist_issues: read_only, not destructive, not open_world"
    )
    assert form["secrets"].value() == "GITHUB_TOKEN"
    assert form["links"].value() == "https://docs.example Docs"
    assert form["owner"].value() == team.name


def test_it_lets_the_owner_edit_a_tool_and_rescores_it(client: Any, owner: Any, team: Any) -> None:
    tool = make_tool(team)
    before = tool.risk_score
    client.force_login(owner)

    response = client.post(
        reverse("catalog:tool-edit", args=[tool.name]), _tool_post(tool, title="GitHub", data_class="restricted")
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:tool", args=[tool.name])
    tool.refresh_from_db()
    assert tool.title == "GitHub" and tool.data_class == "restricted"
    assert tool.risk_score == before + 2
    assert tool.capabilities.count() == 2, "unchanged capability lines leave capabilities alone"
    page = html_of(client.get(response["Location"]))
    assert "Tool “github” saved." in page and "restricted data" in page


def test_it_shows_service_errors_on_their_fields_and_saves_nothing(client: Any, owner: Any, team: Any) -> None:
    tool = make_tool(team)
    client.force_login(owner)
    url = reverse("catalog:tool-edit", args=[tool.name])

    bad_description = client.post(url, _tool_post(tool, title="Changed", description="<script>alert(1)</script>"))
    bad_choice = client.post(url, _tool_post(tool, title="Changed", reach="everywhere"))
    bad_hint = client.post(url, _tool_post(tool, title="Changed", capabilities="list_issues: read_only, sneaky"))
    duplicate = client.post(url, _tool_post(tool, title="Changed", capabilities="a: read_only\n\na: destructive"))

    for response in (bad_description, bad_choice, bad_hint, duplicate):
        assert response.status_code == 200
        assert "Nothing was saved" in html_of(response)
    assert bad_description.context["form"].errors["description"][0].startswith("contains HTML that is never shown")
    assert "reach" in bad_choice.context["form"].errors
    assert "“sneaky” is not a hint" in bad_hint.context["form"].errors["capabilities"][0]
    assert bad_hint.context["form"].errors["capabilities"][0].startswith("Line 1:")
    assert duplicate.context["form"].errors["capabilities"] == ["Line 3: 'a' appears twice."]
    tool.refresh_from_db()
    assert tool.title == "Github server"


def test_it_puts_unknown_error_keys_among_the_non_field_errors(client: Any, owner: Any, team: Any) -> None:
    agent = make_agent(team)
    client.force_login(owner)
    url = reverse("catalog:agent-edit", args=[agent.name])

    response = client.post(
        url,
        {"owner": team.name, "title": "x", "lifecycle": "production", "agent_type": "other", "models": "no-such-model"},
    )

    form = response.context["form"]
    assert form.errors["models"] == ["unknown model(s): no-such-model; register them in the catalog first."]
    agent.refresh_from_db()
    assert agent.title == "Helper agent"


def test_it_creates_an_agent_for_a_team_the_user_maintains(client: Any, owner: Any, team: Any) -> None:
    client.force_login(owner)
    form_page = html_of(client.get(reverse("catalog:agent-create"), {"owner": team.name}))
    assert f'<option value="{team.name}" selected>' in form_page

    response = client.post(
        reverse("catalog:agent-create"),
        {
            "name": "triage",
            "owner": team.name,
            "title": "Triage bot",
            "lifecycle": "experimental",
            "agent_type": "sre",
            "autonomy_level": "2",
            "human_in_loop": "per_action",
            "data_class": "public",
            "environments": "staging, production",
            "tags": "ops, triage",
            "links": "https://runbook.example/triage Runbook",
        },
    )

    assert response.status_code == 302, response.context["form"].errors
    agent = Agent.objects.get(name="triage")
    assert agent.owner == team and agent.autonomy_level == 2 and agent.environments == ["staging", "production"]
    assert agent.tags == ["ops", "triage"] and agent.links == [
        {"url": "https://runbook.example/triage", "title": "Runbook"}
    ]
    assert services.can_edit(owner, agent)


def test_it_refuses_creation_to_people_who_maintain_no_team(client: Any, make_user: Any, team: Any) -> None:
    client.force_login(make_user("bob"))

    assert client.get(reverse("catalog:tool-create")).status_code == 403
    assert client.post(reverse("catalog:tool-create"), {"name": "x", "owner": team.name}).status_code == 403
    assert not Tool.objects.filter(name="x").exists()


def test_it_does_not_offer_teams_the_user_does_not_maintain(client: Any, owner: Any, team: Any, make_team: Any) -> None:
    make_team("elsewhere")
    client.force_login(owner)

    response = client.post(
        reverse("catalog:tool-create"), {"name": "x", "owner": "elsewhere", "kind": "cli", "lifecycle": "experimental"}
    )

    assert "owner" in response.context["form"].errors
    assert not Tool.objects.filter(name="x").exists()


def test_it_lets_a_platform_admin_file_under_any_team(client: Any, make_user: Any, team: Any) -> None:
    client.force_login(make_user("ada", roles=["platform-admin"]))

    response = client.post(
        reverse("catalog:tool-create"),
        {"name": "cli-tool", "owner": team.name, "kind": "cli", "lifecycle": "experimental", "capabilities": "run"},
    )

    assert response.status_code == 302
    assert Tool.objects.get(name="cli-tool").capabilities.get().read_only is None


def test_it_round_trips_capability_lines() -> None:
    text = "list_issues: read_only, not open_world -- Lists issues\n\ndelete_repo: destructive, idempotent\nping"

    capabilities, lines, problems = parse_capabilities(text)

    assert problems == [] and lines == [1, 3, 4]
    assert capabilities[0] == {
        "name": "list_issues",
        "description": "Lists issues",
        "read_only": True,
        "destructive": None,
        "idempotent": None,
        "open_world": False,
    }
    assert capabilities[2]["name"] == "ping" and capabilities[2]["read_only"] is None
    assert [capability_line(cap) for cap in capabilities] == [
        "list_issues: read_only, not open_world -- Lists issues",
        "delete_repo: destructive, idempotent",
        "ping",
    ]


# --- import ----------------------------------------------------------------------------------------------------

BACKSTAGE = textwrap.dedent(
    """\
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata:
      name: release-notes
      description: Drafts release notes.
    spec:
      type: ai-agent
      lifecycle: production
      owner: group:platform
    ---
    apiVersion: backstage.io/v1alpha1
    kind: System
    metadata:
      name: releases
    spec:
      owner: platform
    ---
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata:
      name: Not_A_Label
    spec:
      type: ai-agent
      lifecycle: production
      owner: platform
    """
)


def test_it_imports_a_backstage_file_and_shows_the_counts(client: Any, owner: Any, team: Any) -> None:
    client.force_login(owner)
    upload = SimpleUploadedFile("catalog-info.yaml", BACKSTAGE.encode(), content_type="application/yaml")
    second = SimpleUploadedFile("more.yaml", BACKSTAGE.split("---")[0].replace("release-notes", "changelog").encode())

    response = client.post(reverse("catalog:import"), {"uploads": [upload, second], "text": ""})

    html = html_of(response)
    assert response.status_code == 200
    assert 'data-testid="count-created">2<' in html
    assert 'data-testid="count-skipped">1<' in html
    assert 'data-testid="count-failed">1<' in html
    assert "catalog-info.yaml" in html and "metadata.name" in html
    assert 'href="/catalog/agents/release-notes/"' in html
    assert set(Agent.objects.filter(owner=team).values_list("name", flat=True)) == {"release-notes", "changelog"}


def test_it_imports_pasted_text_as_a_dry_run_without_saving(client: Any, owner: Any, team: Any) -> None:
    client.force_login(owner)

    response = client.post(reverse("catalog:import"), {"text": BACKSTAGE, "dry_run": "on"})

    html = html_of(response)
    assert "Dry run: nothing was saved" in html
    assert 'data-testid="count-created">1<' in html and "pasted text" in html
    assert not Agent.objects.filter(name="release-notes").exists()


def test_it_refuses_an_import_over_the_upload_limit(client: Any, owner: Any, team: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    client.force_login(owner)
    big_file = SimpleUploadedFile("big.yaml", b"#" * 5000)

    file_response = client.post(reverse("catalog:import"), {"uploads": [big_file]})
    text_response = client.post(reverse("catalog:import"), {"text": "#" * 5000})
    huge_response = client.post(
        reverse("catalog:import"), {"uploads": [SimpleUploadedFile("huge.yaml", b"#" * 100_000)]}
    )

    assert "at most 2.0\xa0KB are accepted at once" in html_of(file_response)
    for response in (text_response, huge_response):
        assert response.status_code == 413
        assert "larger than 2.0\xa0KB, the most accepted at once" in html_of(response)
    assert not Agent.objects.exists()


def test_it_asks_for_something_to_import(client: Any, owner: Any) -> None:
    client.force_login(owner)

    response = client.post(reverse("catalog:import"), {"text": "   "})

    assert "Choose one or more files or paste a descriptor." in html_of(response)


def test_it_still_checks_csrf_on_imports(owner: Any, team: Any) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    response = client.post(reverse("catalog:import"), {"text": BACKSTAGE})

    assert response.status_code == 403
    assert not Agent.objects.exists()


def test_facet_and_paging_links_keep_the_rest_of_the_query() -> None:
    from django.template import Context
    from django.test import RequestFactory

    from catalog.templatetags.catalog_tags import query_set, query_toggle

    request = RequestFactory().get("/catalog/", {"q": "deploy bot", "kind": ["tool", "agent"], "tag": "", "page": "3"})
    context = Context({"request": request})
    assert query_toggle(context, "kind", "tool") == "/catalog/?q=deploy+bot&kind=agent"
    assert query_toggle(context, "risk_tier", "high") == "/catalog/?q=deploy+bot&kind=tool&kind=agent&risk_tier=high"
    assert query_set(context, "page", 4) == "/catalog/?q=deploy+bot&kind=tool&kind=agent&page=4"
    assert query_set(context, "q", "") == "/catalog/?kind=tool&kind=agent"
    assert query_set(context, "tag", "pii&x") == "/catalog/?q=deploy+bot&kind=tool&kind=agent&tag=pii%26x"
