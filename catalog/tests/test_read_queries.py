"""How many queries the catalog's busiest reads run, pinned: the API lists (filtered, searched, full pages), the
catalog page (search with two facets, counts cached or not) and, in test_views, the entity pages. bench.catalog
times these reads; a query more per request is a regression these tests name before the benchmark does.

The numbers are the same on SQLite and PostgreSQL but for the catalog page's counting. Each request starts with the session and the user."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalog import selectors, services
from catalog.models import Agent, Team

pytestmark = pytest.mark.django_db

SIGNED_IN = 2  # the session, then the user


@pytest.fixture
def client(make_user: Callable[..., Any]) -> APIClient:
    client = APIClient()
    client.force_login(make_user("reader"))
    return client


@pytest.fixture
def catalog(make_team: Callable[..., Any]) -> Team:
    team = make_team("platform-ai")
    services.model_upsert(data={"name": "gpt-x"})
    for number in range(30):
        services.tool_create(
            actor=None,
            data={
                "name": f"github-{number:02d}",
                "owner": team.name,
                "lifecycle": "production",
                "credential_scope": "admin" if number % 2 else "delegated",
                "capabilities": [{"name": "list_repos", "read_only": True}, {"name": "merge", "destructive": True}],
            },
        )
        agent = services.agent_create(
            actor=None,
            data={"name": f"reviewer-{number:02d}", "owner": team.name, "lifecycle": "production", "models": ["gpt-x"]},
        )
        agent.calls.add(*Agent.objects.exclude(pk=agent.pk)[:2])
    return team


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(captured)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # A first page that is not full is counted by its rows: the page (with owners), then the related rows: a
        # tool's capabilities; an agent's models and the agents it calls, by name, in one query.
        ("/api/v1/tools/?owner=platform-ai&page_size=50", SIGNED_IN + 2),
        ("/api/v1/agents/?owner=platform-ai&page_size=50", SIGNED_IN + 2),
        # A full page is counted.
        ("/api/v1/tools/?owner=platform-ai&page_size=10", SIGNED_IN + 3),
        ("/api/v1/agents/?owner=platform-ai&lifecycle=production&page_size=10&page=2", SIGNED_IN + 3),
        # A search whose matches and their order are shared (below): the matches its filters keep (also its count),
        # the page's rows by id, their related rows.
        ("/api/v1/tools/?q=github&page_size=10", SIGNED_IN + 3),
        ("/api/v1/agents/?q=reviewr&page_size=10", SIGNED_IN + 3),
    ],
)
def test_it_pins_the_queries_of_the_api_lists(
    client: APIClient, catalog: Team, url: str, expected: int, settings: Any
) -> None:
    settings.CATALOG_SEARCH_RESULTS_SECONDS = 0  # every search answered afresh (the shared answers: below)
    client.get(url)  # content types and the like are cached after a first request, as in a running process
    assert _queries(client, url) == expected


@pytest.mark.parametrize("url", ["/api/v1/tools/?q=github&page_size=10", "/api/v1/agents/?q=reviewr&page_size=10"])
def test_it_looks_up_what_search_words_match_once_until_the_catalog_changes(
    client: APIClient, catalog: Team, url: str, settings: Any
) -> None:
    settings.CATALOG_SEARCH_RESULTS_SECONDS = 0
    client.get(url)
    cache.clear()
    # The vocabulary (for corrections; one look even when every word is known), the matching ids and their order
    # (ranked) come first.
    first, again = _queries(client, url), _queries(client, url)
    assert first == again + 3
    names = [row["name"] for row in client.get(url).json()["results"]]

    if "tools" in url:
        services.tool_create(actor=None, data={"name": "github-new", "owner": catalog.name})
    else:
        services.agent_create(actor=None, data={"name": "reviewer-new", "owner": catalog.name})
    assert _queries(client, url) == first, "a catalog write is a new generation: matched again"
    assert client.get(url).json()["count"] == 31 and len(names) == 10


def test_it_pins_the_queries_of_the_catalog_page(client: APIClient, catalog: Team) -> None:
    url = "/catalog/?q=github&kind=tool&risk_tier=high"
    cache.clear()
    client.get("/catalog/")
    cache.clear()
    # Counted: the vocabulary, the facet counts and total (PostgreSQL: one GROUPING SETS scan of the search rows;
    # SQLite: a GROUP BY per facet, then the total), the page's ids, its entries, and whether to offer "Add".
    counting = {"postgresql": 1, "sqlite": len(selectors.FACETS) + 1}[connection.vendor]
    counted, shared = _queries(client, url), _queries(client, url)
    # The counts of the same search are shared until the next catalog write.
    assert (counted, shared) == (SIGNED_IN + 4 + counting, SIGNED_IN + 3)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/tools/?q=github&page_size=10",
        "/api/v1/agents/?q=reviewr&page=2&page_size=10",
        "/api/v1/search/?q=githb",
    ],
)
def test_it_shares_a_search_answer_between_readers_until_the_catalog_changes(
    client: APIClient, catalog: Team, make_user: Callable[..., Any], url: str
) -> None:
    first = client.get(url).json()
    other = APIClient()
    other.force_login(make_user("other-reader"))

    with CaptureQueriesContext(connection) as shared:
        again = other.get(url).json()
    services.tool_create(actor=None, data={"name": "github-new", "owner": catalog.name})
    services.agent_create(actor=None, data={"name": "reviewer-new", "owner": catalog.name})
    after_write = other.get(url).json()

    assert not [query for query in shared.captured_queries if "catalog_" in query["sql"]] and again == first
    assert after_write["count"] == first["count"] + 1
    assert first["count"] > 0


def test_it_keeps_no_answer_past_its_lifetime_nor_an_error(client: APIClient, catalog: Team, settings: Any) -> None:
    settings.CATALOG_SEARCH_RESULTS_SECONDS = 1
    url = "/api/v1/tools/?q=github&page_size=10"
    client.get(url)
    Team.objects.filter(pk=catalog.pk).update(name="renamed")  # a write the search index does not see

    time.sleep(1.1)
    answer = client.get(url).json()
    missing_page = client.get(url + "&page=9")

    assert {row["owner"] for row in answer["results"]} == {"renamed"}
    assert missing_page.status_code == 404
    assert client.get(url + "&page=9").status_code == 404
