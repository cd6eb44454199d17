"""Catalog search on both databases: exact facet counts, sorting and paging, shared counts, prefixes and typo
correction against the catalog's own words; on PostgreSQL the search tables kept by triggers (migration 0004)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog import search as engine
from catalog import selectors, services
from catalog.migrations import _search_sql
from catalog.models import Agent, CatalogEntry, Tool
from catalog.selectors import CatalogQuery, catalog_search
from catalog.tests.factories import AgentFactory, ToolFactory

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="search tables of PostgreSQL")


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    # Shared counts are keyed by a generation that test rollbacks do not restore.
    cache.clear()


@pytest.fixture
def team(make_team: Any) -> Any:
    return make_team("platform")


def make_tool(team: Any, name: str, **data: Any) -> Tool:
    return ToolFactory(owner=team.name, name=name, **data)


def make_agent(team: Any, name: str, **data: Any) -> Agent:
    return AgentFactory(owner=team.name, name=name, **data)


def search(**params: Any) -> selectors.CatalogPage:
    return catalog_search(user=AnonymousUser(), query=CatalogQuery.from_params(params))


def names(page: selectors.CatalogPage) -> list[str]:
    return [entry.name for entry in page.entries]


def facet(page: selectors.CatalogPage, name: str) -> dict[str, int]:
    return {value.value: value.count for facet_name, _, values in page.facets if facet_name == name for value in values}


def a_varied_catalog(make_team: Any) -> None:
    teams = [make_team(f"team-{number}") for number in range(3)]
    for number in range(12):
        make_tool(
            teams[number % 3],
            f"records-tool-{number}",
            lifecycle=["production", "experimental", "deprecated"][number % 3],
            data_class=["internal", "confidential", "public", "restricted"][number % 4],
            kind=["mcp_server", "http_api"][number % 2],
            tags=[["scm", "pii"], ["finance"], ["pii"]][number % 3],
        )
    for number in range(6):
        make_agent(
            teams[number % 2],
            f"records-agent-{number}",
            lifecycle=["production", "experimental"][number % 2],
            autonomy_level=1 + number % 3,
        )
    make_tool(teams[0], "unrelated", description="Sends mail.", capabilities=[{"name": "send_mail"}])


# --- both databases ---------------------------------------------------------------------------------------------


def test_it_counts_every_facet_exactly_for_a_search_with_two_facets(make_team: Any) -> None:
    a_varied_catalog(make_team)

    page = search(q="records", kind="tool", lifecycle=["production", "experimental"])

    expected = CatalogEntry.objects.filter(
        search_text__contains="records", kind="tool", lifecycle__in=["production", "experimental"]
    )
    assert page.total == expected.count() == 8
    for name, column in [*((n, n) for n in engine.COMBINED_FACETS), ("owner", "owner__name")]:
        want = Counter(expected.values_list(column, flat=True))
        want = {str(value): n for value, n in want.items() if value not in (None, "")}
        assert facet(page, name) == want, name


def test_it_filters_by_tag_and_owner_and_drops_nonsense_autonomy_levels(make_team: Any) -> None:
    a_varied_catalog(make_team)

    tagged = search(q="records", tag="pii", owner="team-0")
    nonsense = search(q="records", autonomy_level=["high", "²"])

    assert tagged.total == CatalogEntry.objects.filter(owner__name="team-0", tags__icontains='"pii"').count() == 4
    assert nonsense.total == 0 and nonsense.entries == []


@pytest.mark.parametrize("sort", ["name", "-risk", "risk", "-updated"])
def test_it_sorts_and_pages_search_results(make_team: Any, sort: str) -> None:
    a_varied_catalog(make_team)
    ordering = {"name": ("name", "kind"), "-risk": ("-risk_rank", "name"), "risk": ("risk_rank", "name")}
    ordering["-updated"] = ("-updated_at", "name")
    everything = list(
        CatalogEntry.objects.filter(search_text__contains="records", kind="tool")
        .order_by(*ordering[sort])
        .values_list("name", flat=True)
    )

    pages = [search(q="records", kind="tool", sort=sort, page_size=5, page=number) for number in (1, 2, 3)]

    assert [name for page in pages for name in names(page)] == everything
    assert [page.num_pages for page in pages] == [3, 3, 3]


def queries_of(**params: Any) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        page = search(**params)
    assert page.entries
    return len(captured)


def test_it_runs_the_same_number_of_queries_for_6_and_60_matches(team: Any) -> None:
    for number in range(6):
        make_tool(team, f"records-{number}", lifecycle="production")
    few = queries_of(q="records", kind="tool", lifecycle="production")
    for number in range(6, 60):
        make_tool(team, f"records-{number}", lifecycle="production")

    assert queries_of(q="records", kind="tool", lifecycle="production") == few


def test_it_shares_counts_between_pages_until_the_catalog_changes(team: Any) -> None:
    tools = [make_tool(team, f"records-{number}", lifecycle="production") for number in range(4)]
    first = search(q="records", lifecycle="production", page_size=2)

    with CaptureQueriesContext(connection) as second_page:
        second = search(q="records", lifecycle="production", page_size=2, page=2)
    services.tool_update(actor=None, tool=tools[0], data={"lifecycle": "deprecated"})
    after_write = search(q="records", lifecycle="production", page_size=2)

    assert first.total == second.total == 4
    assert not any("count(" in query["sql"].lower() for query in second_page.captured_queries)
    assert after_write.total == 3 and facet(after_write, "lifecycle") == {"production": 3}


@pytest.mark.parametrize(
    ("typed", "meant", "found"),
    [
        ("githb", "github", "github-mcp"),
        ("refnd", "refund", "refund-api"),
        ("warehuose", "warehouse", "stock-keeper"),
        ("kubernets", "kubernetes", "kubernetes-mcp"),
    ],
)
def test_it_forgives_one_edit_or_transposition(team: Any, typed: str, meant: str, found: str) -> None:
    make_tool(team, "github-mcp", description="Reads issues.")
    make_tool(team, "refund-api", description="Issues refunds.")
    make_agent(team, "stock-keeper", description="Counts the warehouse every night.")
    make_tool(team, "kubernetes-mcp", description="Deploys workloads.")

    page = search(q=typed)

    assert names(page) == [found]
    assert page.corrections == {typed: [meant]}


def test_it_reads_a_misspelt_word_as_the_likeliest_slip_only(team: Any) -> None:
    make_agent(team, "code-reviewer", description="Comments on pull requests.")
    make_agent(team, "digest-writer", description="Sums up the reviews of the week.")

    page = search(q="reviewr")

    assert names(page) == ["code-reviewer"] and page.corrections == {"reviewr": ["reviewer"]}


def test_it_matches_words_by_their_beginning_while_typing(team: Any) -> None:
    make_agent(team, "stock-keeper", description="Counts the warehouse every night.")
    make_tool(team, "github-mcp", description="Reads issues.")

    assert names(search(q="wareh")) == ["stock-keeper"]
    assert names(search(q="git iss")) == ["github-mcp"]
    assert search(q="wareh").corrections == {}


def test_it_ranks_the_better_match_first(team: Any) -> None:
    make_tool(team, "alpha-tool", description="Mentions billing once among other words about many things.")
    make_tool(team, "billing-api", title="Billing", description="Billing: invoices, billing runs, billing reports.")

    assert names(search(q="billing", sort="relevance")) == ["billing-api", "alpha-tool"]


def test_it_corrects_a_misspelt_word_in_the_same_number_of_queries_however_many_match(team: Any) -> None:
    make_tool(team, "kubernetes-mcp", description="Deploys workloads.")
    make_tool(team, "github-mcp", description="Reads issues.")

    page = search(q="kubernets")
    one = queries_of(q="kubernets", kind="tool")
    for number in range(20):
        make_tool(team, f"kubernetes-{number}")

    assert names(page) == ["kubernetes-mcp"]
    assert page.corrections == {"kubernets": ["kubernetes"]}
    assert queries_of(q="kubernets", kind="tool") == one


def test_it_keeps_every_other_word_of_a_corrected_search(team: Any) -> None:
    make_tool(team, "kubernetes-deployer", description="Deploys workloads.")
    make_tool(team, "kubernetes-reader", description="Reads workloads.")
    make_tool(team, "jenkins-deployer", description="Deploys builds.")

    page = search(q="kubernets deploys")

    assert names(page) == ["kubernetes-deployer"]


def test_it_corrects_no_word_the_catalog_knows(team: Any) -> None:
    make_tool(team, "github-mcp")
    make_tool(team, "gitlab-mcp")

    page = search(q="github")

    assert names(page) == ["github-mcp"] and page.corrections == {}


def test_it_never_reads_typed_words_as_facet_values(team: Any) -> None:
    make_tool(team, "plain-tool", lifecycle="production", data_class="internal")

    assert search(q="lifecycle=production").total == 0
    assert search(q="data").total == 0 and search(q="risk").total == 0 and search(q="kind").total == 0
    assert search(q="records", lifecycle="production").total == 1
    assert search(q="!!!", lifecycle="production").total == 0


def test_the_api_searches_with_the_same_engine(client: Any, make_user: Any, team: Any) -> None:
    make_tool(team, "refund-api", description="Issues refunds.")
    make_tool(team, "github-mcp", description="Reads issues.")
    make_agent(team, "stock-keeper", description="Counts the warehouse every night.")
    client.force_login(make_user("reader"))

    tools = client.get("/api/v1/tools/", {"q": "refnd", "facets": "owner,kind,tier"}).json()
    agents = client.get("/api/v1/agents/", {"q": "warehuose"}).json()
    both = client.get("/api/v1/search/", {"q": "githb"}).json()

    assert [tool["name"] for tool in tools["results"]] == ["refund-api"]
    assert tools["facets"]["owner"] == [{"value": "platform", "count": 1}]
    assert tools["facets"]["risk_tier"][0]["count"] == 1 and "kind" in tools["facets"]
    assert [agent["name"] for agent in agents["results"]] == ["stock-keeper"]
    assert [entry["name"] for entry in both["results"]] == ["github-mcp"]
    assert both["corrections"] == {"githb": ["github"]}


# --- PostgreSQL ---------------------------------------------------------------------------------------------


@on_postgres
def test_it_matches_facet_values_with_quotes_and_backslashes(team: Any) -> None:
    tool = make_tool(team, "odd-tool")
    CatalogEntry.objects.filter(kind="tool", entity_id=tool.pk).update(lifecycle="it's\\odd")

    page = search(lifecycle="it's\\odd")

    assert names(page) == ["odd-tool"] and facet(page, "lifecycle") == {"it's\\odd": 1}


@on_postgres
def test_it_keeps_the_search_rows_and_vocabulary_in_step_with_writes(team: Any) -> None:
    tool = make_tool(team, "kubernetes-mcp", tags=["scm"])
    assert search(q="kubernets").total == 1

    services.tool_update(actor=None, tool=tool, data={"tags": ["payroll"]})
    assert search(tag="payroll").total == 1 and search(tag="scm").total == 0
    services.tool_delete(actor=None, tool=tool)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM catalog_search_row")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT word FROM catalog_search_word WHERE word IN ('kubernetes', 'payroll')")
        assert cursor.fetchall() == []
    assert search(q="kubernets").total == 0


@on_postgres
def test_it_drops_a_word_from_the_vocabulary_only_when_no_entry_has_it_any_more(team: Any) -> None:
    first = make_tool(team, "books-mcp", description="reads the quarterly ledger")
    second = make_tool(team, "other-mcp", description="posts to the ledger")

    def vocabulary(*words: str) -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT word FROM catalog_search_word WHERE word = ANY(%s)", [list(words)])
            return {row[0] for row in cursor.fetchall()}

    assert vocabulary("ledger", "quarterly") == {"ledger", "quarterly"}
    # A status change keeps every word; a new description drops the words only this entry had.
    CatalogEntry.objects.filter(kind="tool", entity_id=first.pk).update(status="approved")
    assert vocabulary("ledger", "quarterly") == {"ledger", "quarterly"}
    services.tool_update(actor=None, tool=first, data={"description": "reads invoices"})
    assert vocabulary("ledger", "quarterly", "invoices") == {"ledger", "invoices"}
    services.tool_delete(actor=None, tool=second)
    assert vocabulary("ledger", "posts", "invoices") == {"invoices"}


@on_postgres
def test_it_rebuilds_the_same_search_rows_from_the_catalog(make_team: Any) -> None:
    a_varied_catalog(make_team)
    columns = "entry_id, owner_id, updated_at, facets_id, risk_rank, kind, name, search_vector::text"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM catalog_search_row ORDER BY entry_id")  # noqa: S608
        by_triggers = cursor.fetchall()
        cursor.execute("SELECT word FROM catalog_search_word ORDER BY word")
        words = cursor.fetchall()
        cursor.execute("DELETE FROM catalog_search_row; DELETE FROM catalog_search_word;")
        cursor.execute(_search_sql.BACKFILL)
        cursor.execute(f"SELECT {columns} FROM catalog_search_row ORDER BY entry_id")  # noqa: S608
        assert cursor.fetchall() == by_triggers
        cursor.execute("SELECT word FROM catalog_search_word ORDER BY word")
        assert cursor.fetchall() == words
    assert ("records",) in words and ("pii",) in words


@on_postgres
def test_it_finds_the_same_page_by_walking_the_name_index(make_team: Any, monkeypatch: Any) -> None:
    a_varied_catalog(make_team)
    sorted_in_memory = names(search(q="records", sort="name", page_size=4, page=2))

    monkeypatch.setattr(engine, "SORT_MATCHES_AT_MOST", 0)
    cache.clear()
    walked = search(q="records", sort="name", page_size=4, page=2)

    assert names(walked) == sorted_in_memory


def test_searches_are_planned_for_their_values_while_other_statements_get_prepared(team: Any) -> None:
    """A prepared search would get a generic plan after five runs, blind to how common its words are."""
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    make_tool(team, "deploy-bot", description="Deploys services.")
    for _ in range(8):
        cache.clear()  # count afresh every time
        assert names(search(q="deploy", kind=["tool"])) == ["deploy-bot"]
        list(Tool.objects.filter(name="deploy-bot"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('"catalog_tool"' in statement for statement in prepared), prepared
    assert not any("catalog_search_row" in statement for statement in prepared), prepared


@on_postgres
def test_a_bulk_insert_analyses_the_search_table_only_when_it_grows_by_half(team: Any) -> None:
    from catalog.bulk import copy_rows

    now = timezone.now()
    fixed = {"kind": "tool", "title": "", "summary": "", "owner_id": team.pk, "risk_tier": "low", "risk_rank": 0,
             "risk_explanation": "", "lifecycle": "production", "status": "active", "autonomy_level": None,
             "data_class": "", "tool_kind": "mcp", "tags": ["t"], "search_text": "bulk", "updated_at": now}  # fmt: skip

    def insert_entries(first_id: int) -> None:  # in one statement, as an import writes them
        ids = range(first_id, first_id + _search_sql.BULK_ROWS)
        columns = [*fixed, "entity_id", "name", "search_names"]
        copy_rows(CatalogEntry, columns, [(*fixed.values(), i, f"bulk-{i}", f"bulk-{i}") for i in ids])

    def search_row_estimate() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'catalog_search_row'::regclass")
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:  # as if the table held a million rows (rolled back with the test)
        cursor.execute("UPDATE pg_class SET reltuples = 1e6 WHERE oid = 'catalog_search_row'::regclass")
    insert_entries(1)
    assert search_row_estimate() == 1e6  # 10,000 more rows: not analysed

    with connection.cursor() as cursor:  # never analysed, as after a migration
        cursor.execute("UPDATE pg_class SET reltuples = -1 WHERE oid = 'catalog_search_row'::regclass")
    insert_entries(1 + _search_sql.BULK_ROWS)
    assert search_row_estimate() == CatalogEntry.objects.count() == 2 * _search_sql.BULK_ROWS  # analysed


def test_a_nul_byte_in_any_search_parameter_is_dropped_not_sent_to_the_database(
    api_client: Any, make_user: Any, team: Any
) -> None:
    """Found by the schemathesis gate: PostgreSQL refuses NUL in text, which answered 500."""
    AgentFactory(name="nul-free-agent")
    api_client.force_authenticate(make_user("reader"))
    response = api_client.get("/api/v1/search/", {"q": "nul\x00-free", "kind": "agent\x00", "tag": "\x00"})
    assert response.status_code == 200, response.content
    assert CatalogQuery.from_params({"q": "a\x00b", "owner": ["x\x00"]}) == CatalogQuery(
        q="ab", filters={"owner": ["x"]}, sort="relevance"
    )


def test_the_catalog_page_says_how_it_read_a_misspelt_word(team: Any, client: Any, make_user: Any) -> None:
    make_tool(team, "kubernetes-mcp", description="Deploys workloads.")
    client.force_login(make_user("reader"))

    page = client.get("/catalog/", {"q": "kubernets"}).content.decode()
    plain = client.get("/catalog/", {"q": "kubernetes"}).content.decode()

    assert "kubernetes-mcp" in page
    assert "“kubernets” as “kubernetes”" in page and 'data-testid="search-corrections"' in page
    assert 'data-testid="search-corrections"' not in plain
