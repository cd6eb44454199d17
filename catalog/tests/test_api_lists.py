"""The agent and tool lists of the API: filters, search, facet counts and paging, in a constant number of
queries; each page is what the serializers render for the filtered model instances."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from catalog import selectors, services
from catalog.api import serializers as s
from catalog.models import Agent, Team, Tool

pytestmark = pytest.mark.django_db

AGENTS = "/api/v1/agents/"
TOOLS = "/api/v1/tools/"


@pytest.fixture
def client(make_user: Callable[..., Any]) -> APIClient:
    client = APIClient()
    client.force_login(make_user("reader"))
    return client


@pytest.fixture
def varied(make_team: Callable[..., Any]) -> dict[str, Team]:
    """Agents and tools with every optional fact set, with every nullable one null, and with odd stored values."""
    platform, payments = make_team("platform-ai"), make_team("payments")
    for name in ("gpt-x", "claude-y"):
        services.model_upsert(data={"name": name})
    services.tool_create(
        actor=None,
        data={
            "name": "github-mcp",
            "owner": platform.name,
            "registry_name": "io.github.example/github",
            "title": "GitHub",
            "description": "Reads *repositories*.",
            "kind": "mcp_server",
            "version": "1.2.0",
            "lifecycle": "production",
            "endpoint_url": "https://mcp.example.com/github",
            "transport": "streamable_http",
            "auth_scheme": "oauth2",
            "credential_scope": "delegated",
            "reach": "closed",
            "data_class": "confidential",
            "repository_url": "https://git.example.com/github-mcp",
            "tags": ["scm", "critical-path"],
            "links": [{"url": "https://runbook.example.com", "title": "Runbook"}, {"url": "https://dash.example.com"}],
            "annotations": {"backstage.io/source": "url:https://example.com"},
            "packages": [{"registryType": "npm", "identifier": "@example/github-mcp", "version": "1.2.0"}],
            "remotes": [{"type": "streamable-http", "url": "https://mcp.example.com/github", "headers": []}],
            "capabilities": [
                {"name": "get_file", "description": "Reads a file.", "read_only": True, "idempotent": True},
                {"name": "create_issue", "destructive": False, "open_world": None},
                {"name": "delete_repo", "destructive": True, "read_only": False, "open_world": False},
            ],
            "secrets": ["GITHUB_TOKEN", "GITHUB_APP_KEY"],
        },
    )
    services.tool_create(
        actor=None,
        data={"name": "billing-api", "owner": payments.name, "kind": "http_api", "definition": "openapi: 3.1.0\n"},
    )
    services.tool_create(actor=None, data={"name": "bare-tool", "owner": platform.name, "lifecycle": "production"})
    services.agent_create(
        actor=None,
        data={
            "name": "release-notes-agent",
            "owner": platform.name,
            "title": "Release notes",
            "description": "Drafts release notes.",
            "lifecycle": "production",
            "agent_type": "coding",
            "autonomy_level": 2,
            "human_in_loop": "per_action",
            "data_class": "internal",
            "runtime": "kubernetes",
            "repository_url": "https://git.example.com/release-notes",
            "a2a_endpoint": "https://agents.example.com/release-notes",
            "a2a_protocol_version": "0.3",
            "provider_org": "Example",
            "version": "2.0",
            "environments": ["production", "staging"],
            "tags": ["release", "python"],
            "links": [{"url": "https://runbook.example.com"}],
            "annotations": {"owner-note": "ask #release"},
            "skills": [{"id": "draft", "name": "Draft", "tags": ["notes"]}, {"id": "bare"}],
            "models": ["gpt-x", "claude-y"],
            "tools": ["github-mcp", "billing-api"],
        },
    )
    services.agent_create(actor=None, data={"name": "wild-agent", "owner": platform.name, "lifecycle": "production"})
    services.agent_create(actor=None, data={"name": "invoice-agent", "owner": payments.name, "models": ["gpt-x"]})
    caller = Agent.objects.get(name="release-notes-agent")
    caller.calls.add(*Agent.objects.exclude(pk=caller.pk))
    # Rows never scored, and values the services would not write but older imports may have stored.
    Agent.objects.filter(name="wild-agent").update(risk={}, tags=[7, None], annotations={"n": 1, "none": None})
    Tool.objects.filter(name="bare-tool").update(risk={}, orphaned=True, tags=[], secret_names=[])
    return {"platform": platform, "payments": payments}


def _json(data: Any) -> bytes:
    return JSONRenderer().render(data)


@pytest.mark.parametrize(
    ("url", "serializer", "model"),
    [(AGENTS, s.AgentSerializer, Agent), (TOOLS, s.ToolSerializer, Tool)],
)
def test_it_lists_exactly_what_the_full_serializer_renders(
    client: APIClient, varied: dict[str, Team], url: str, serializer: type[s.serializers.Serializer], model: Any
) -> None:
    instances = model.objects.order_by("name")
    queries = ["", "owner=platform-ai", "owner=PAYMENTS", "status=draft", "page_size=1&page=2", "tag=scm"]
    for query in queries:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200, (query, response.content)
        names = [row["name"] for row in response.data["results"]]
        expected = serializer(sorted(instances.filter(name__in=names), key=lambda i: names.index(i.name)), many=True)

        assert _json(response.data["results"]) == _json(expected.data), query

    everything = client.get(f"{url}?page_size=100").data
    assert everything["count"] == 3
    assert _json(everything["results"]) == _json(serializer(instances, many=True).data)


@pytest.mark.parametrize(
    ("url", "make"),
    [
        (f"{AGENTS}?owner=platform-ai&lifecycle=production&page_size=100", "agent"),
        (f"{TOOLS}?owner=platform-ai&status=draft&page_size=100", "tool"),
    ],
)
def test_it_lists_filtered_pages_in_a_constant_number_of_queries(
    client: APIClient, make_team: Callable[..., Any], url: str, make: str
) -> None:
    team = make_team("platform-ai")
    services.model_upsert(data={"name": "gpt-x"})

    def add(number: int) -> None:
        data = {"name": f"{make}-{number:02d}", "owner": team.name, "lifecycle": "production"}
        if make == "agent":
            agent = services.agent_create(actor=None, data={**data, "models": ["gpt-x"]})
            agent.calls.add(*Agent.objects.exclude(pk=agent.pk)[:2])
        else:
            services.tool_create(actor=None, data={**data, "capabilities": [{"name": "a"}, {"name": "b"}]})

    add(0)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for number in range(1, 25):
        add(number)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)

    assert response.data["count"] == 25
    assert len(many) == len(one)


def test_it_keeps_filter_errors_to_the_request_that_made_them(client: APIClient, varied: dict[str, Team]) -> None:
    # The filters and their form fields are shared between requests (filters._CatalogFilterSet).
    bad = client.get(f"{TOOLS}?risk_tier=extreme&kind=nope")
    good = client.get(f"{TOOLS}?q=github&owner=platform-ai")
    also_bad = client.get(f"{AGENTS}?autonomy_level=9")

    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"risk_tier", "kind"}
    assert good.status_code == 200
    assert [row["name"] for row in good.json()["results"]] == ["github-mcp"]
    assert also_bad.status_code == 400
    assert set(also_bad.json()["error"]["fields"]) == {"autonomy_level"}
    assert [row["name"] for row in client.get(f"{AGENTS}?tag=python").json()["results"]] == ["release-notes-agent"]


@pytest.mark.parametrize(
    ("query", "count", "names", "has_next", "has_previous"),
    [
        ("page_size=4", 3, ["bare-tool", "billing-api", "github-mcp"], False, False),  # short: counted by its rows
        ("page_size=3", 3, ["bare-tool", "billing-api", "github-mcp"], False, False),  # full: counted by a query
        ("page_size=2", 3, ["bare-tool", "billing-api"], True, False),
        ("page_size=2&page=1", 3, ["bare-tool", "billing-api"], True, False),
        ("page_size=2&page=2", 3, ["github-mcp"], False, True),
        ("page_size=2&page=last", 3, ["github-mcp"], False, True),
        ("owner=nobody", 0, [], False, False),
    ],
)
def test_it_pages_as_before_whether_or_not_the_first_page_is_full(
    client: APIClient,
    varied: dict[str, Team],
    query: str,
    count: int,
    names: list[str],
    has_next: bool,
    has_previous: bool,
) -> None:
    body = client.get(f"{TOOLS}?{query}").json()

    assert list(body) == ["count", "next", "previous", "results"]
    assert body["count"] == count
    assert [row["name"] for row in body["results"]] == names
    assert (body["next"] is not None, body["previous"] is not None) == (has_next, has_previous)
    assert client.get(f"{TOOLS}?page=3&page_size=2").json()["error"]["message"] == "Invalid page."


def test_it_counts_the_facets_asked_for_over_the_whole_filtered_list(
    client: APIClient, varied: dict[str, Team]
) -> None:
    body = client.get(f"{TOOLS}?facets=owner,tier,kind&page_size=1").json()
    filtered = client.get(f"{TOOLS}?facets=owner,kind&owner=platform-ai&page_size=1").json()
    searched = client.get(f"{AGENTS}?q=release&facets=owner,type").json()

    assert len(body["results"]) == 1 and body["count"] == 3
    assert body["facets"]["owner"] == [{"value": "platform-ai", "count": 2}, {"value": "payments", "count": 1}]
    assert sum(value["count"] for value in body["facets"]["risk_tier"]) == 3
    kinds = Counter(Tool.objects.values_list("kind", flat=True))
    assert body["facets"]["kind"] == [
        {"value": kind, "count": n} for kind, n in sorted(kinds.items(), key=lambda i: (-i[1], i[0]))
    ]
    assert filtered["facets"]["owner"] == [{"value": "platform-ai", "count": 2}]
    assert sum(value["count"] for value in filtered["facets"]["kind"]) == 2
    assert searched["facets"] == {
        "owner": [{"value": "platform-ai", "count": 1}],
        "agent_type": [{"value": "coding", "count": 1}],
    }
    assert "facets" not in client.get(TOOLS).json()


def test_it_names_an_unknown_facet(client: APIClient, varied: dict[str, Team]) -> None:
    response = client.get(f"{AGENTS}?facets=owner,transport")

    assert response.status_code == 400
    assert "transport" in response.json()["error"]["fields"]["facets"][0]


def test_it_lists_search_matches_best_first(client: APIClient, varied: dict[str, Team]) -> None:
    body = client.get(f"{TOOLS}?q=githb").json()
    typing = client.get(f"{AGENTS}?q=relea").json()

    assert [row["name"] for row in body["results"]] == ["github-mcp"]
    assert [row["name"] for row in typing["results"]] == ["release-notes-agent"]


def test_it_pages_a_searched_list_in_the_search_order_keeping_its_other_filters(
    client: APIClient, make_team: Callable[..., Any], settings: Any
) -> None:
    settings.CATALOG_SEARCH_RESULTS_SECONDS = 0  # every page answered afresh
    mine, theirs = make_team("platform-ai"), make_team("data-eng")
    for number in range(7):
        # Names out of rank order: the ledger words are more frequent in the later tools.
        services.tool_create(
            actor=None,
            data={
                "name": f"tool-{number}",
                "owner": (mine if number % 3 else theirs).name,
                "title": "Ledger" if number > 3 else "Books",
                "description": "Keeps the ledger. " * number,
            },
        )
    services.tool_create(actor=None, data={"name": "unrelated", "owner": mine.name})
    order = selectors.entity_search_order(Tool, q="ledger")
    assert order is not None
    owners = dict(Tool.objects.values_list("pk", "owner__name"))
    by_pk = dict(Tool.objects.values_list("pk", "name"))
    expected = [by_pk[pk] for pk in order if owners[pk] == "platform-ai"]

    url = f"{TOOLS}?q=ledger&owner=platform-ai"
    whole = client.get(f"{url}&page_size=100").json()
    pages = [client.get(f"{url}&page_size=2&page={number}").json() for number in (1, 2, 3)]

    assert len(expected) == 4 and "unrelated" not in expected
    assert [row["name"] for row in whole["results"]] == expected and whole["count"] == 4
    assert [row["name"] for page in pages[:2] for row in page["results"]] == expected
    assert [page["count"] for page in pages[:2]] == [4, 4]
    assert pages[2]["error"]["status"] == 404  # past the last page, as for any list
