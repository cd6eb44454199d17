"""The catalog's search engine, for the catalog page, the REST API and the portal's MCP server alike.

One path on both databases: the search words are split into terms, each term that is no catalog word (nor the start
of one) gets its corrections (the catalog words one edit or one transposition away), and the entries matching every
term (as a word prefix, or as one of its corrections) are counted, faceted and ranked. Only the index and the
statements that read it differ, and they differ only here:
- PostgreSQL: a tsvector per entry in `catalog_search_row` (GIN; migration 0004) ranked by `ts_rank`, and the
  vocabulary `catalog_search_word` (words of three letters or more), both kept by triggers (_search_sql).
- SQLite: an FTS5 index `catalog_search_fts` over the entries' search text ranked by `bm25`, and its `fts5vocab`
  table as the vocabulary, kept by triggers (migration 0011).

Raw SQL here is full-text search, which the ORM does not express (tsquery/MATCH, ranking, the vocabulary); the
figures that keep the PostgreSQL statements as they are come from `python -m bench.catalog` (catalog page search +
two facets at 100k entries, p95 <= 80 ms). Values are always parameters; only our own names are interpolated.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, F, FloatField
from django.db.models.expressions import Expression, RawSQL

from catalog.migrations._search_sql import FACET_MARK
from portal.db import planned_for_each_value

MAX_TERMS = 8
CORRECTABLE = re.compile(r"[a-z]{4,}")  # shorter words have too many neighbours to guess from
CORRECTIONS_PER_TERM = 3
TERM = re.compile(r"[^\W_]+")  # as both tokenizers split: letters and digits, underscores and dashes separate


@dataclass(frozen=True)
class Term:
    text: str
    corrections: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchPlan:
    """What the search words mean to the index: every term must match, as typed (a word prefix) or corrected."""

    terms: tuple[Term, ...] = ()
    matches_nothing: bool = False  # words were typed, but none a word can match (only punctuation)

    @property
    def corrections(self) -> dict[str, list[str]]:
        return {term.text: list(term.corrections) for term in self.terms if term.corrections}

    def __bool__(self) -> bool:
        """Whether the plan narrows the catalog at all."""
        return bool(self.terms) or self.matches_nothing


def search_terms(q: str) -> list[str]:
    return TERM.findall(q.lower())[:MAX_TERMS]


def one_edit_away(word: str) -> dict[str, int]:
    """The spellings one deletion, transposition, substitution or insertion (a-z) away from `word`, each with its
    preference when several are catalog words: a transposition first, then a missing letter, then a wrong letter,
    then an extra one."""
    letters = string.ascii_lowercase
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    found: dict[str, int] = {}
    kinds = (
        (0, (a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1)),
        (1, (a + c + b for a, b in splits for c in letters)),
        (2, (a + c + b[1:] for a, b in splits if b for c in letters)),
        (3, (a + b[1:] for a, b in splits if b)),
    )
    for preference, spellings in kinds:
        for spelling in spellings:
            if spelling != word:
                found.setdefault(spelling, preference)
    return found


def plan_search(q: str) -> SearchPlan:
    """The terms of `q` with the corrections of those the catalog does not know: one vocabulary query at most."""
    terms = search_terms(q)
    if not terms:
        return SearchPlan(matches_nothing=bool(q.strip()))
    unknown = sorted({term for term in terms if CORRECTABLE.fullmatch(term)})
    if not unknown:
        return SearchPlan(tuple(Term(term) for term in terms))
    variants = {term: one_edit_away(term) for term in unknown}
    words, prefixes = index().vocabulary(
        words=sorted({*unknown, *(spelling for spellings in variants.values() for spelling in spellings)}),
        prefixes=unknown,
    )
    corrections: dict[str, tuple[str, ...]] = {}
    for term in unknown:
        if term in words or term in prefixes:
            continue
        known = sorted((preference, spelling) for spelling, preference in variants[term].items() if spelling in words)
        # Only the likeliest kind of slip found: "reviewr" is "reviewer" (a letter left out), not also "reviews".
        best = [spelling for preference, spelling in known if preference == known[0][0]] if known else []
        corrections[term] = tuple(best[:CORRECTIONS_PER_TERM])
    return SearchPlan(tuple(Term(term, corrections.get(term, ())) for term in terms))


def _upper_bound(prefix: str) -> str:
    """The least string above every string starting with `prefix` (letters only)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass
class PostgresIndex:
    vendor: str = "postgresql"
    name: str = "PostgreSQL full-text (tsvector) with typo corrections"

    def vocabulary(self, *, words: Sequence[str], prefixes: Sequence[str]) -> tuple[set[str], set[str]]:
        """Which of `words` are catalog words, and which of `prefixes` start a longer catalog word."""
        sql = """
            SELECT 'word', word FROM catalog_search_word WHERE word = ANY(%s::text[])
            UNION ALL
            SELECT 'prefix', p.prefix FROM unnest(%s::text[], %s::text[]) AS p(prefix, above)
            WHERE EXISTS (
                SELECT FROM catalog_search_word AS w
                WHERE w.word > p.prefix AND w.word < p.above AND starts_with(w.word, p.prefix)
            )
        """
        return _vocabulary(sql, [list(words), list(prefixes), [_upper_bound(p) for p in prefixes]])

    def tsquery(self, plan: SearchPlan) -> tuple[str, list[Any]]:
        """The plan as one tsquery parameter: each term a prefix, or-ed with its corrections; terms and-ed. Terms
        are letters and digits only, so they are safe lexemes once quoted."""
        parts = []
        for term in plan.terms:
            typed = f"'{term.text}':*" if len(term.text) > 1 else f"'{term.text}'"
            parts.append("(" + " | ".join([typed, *(f"'{word}'" for word in term.corrections)]) + ")")
        return "%s::tsquery", [" & ".join(parts)]

    def entry_ids(self, plan: SearchPlan, kind: str = "") -> tuple[str, list[Any]]:
        """The ids of the entries matching `plan` (of `kind` only, if given: one GIN lookup for both)."""
        tsquery, params = self.tsquery(plan)
        if kind:
            params = [f"{params[0]} & {_token('kind', kind)}"]
        return f"SELECT entry_id FROM catalog_search_row WHERE search_vector @@ {tsquery}", params  # noqa: S608

    def id_list(self, ids: Sequence[int]) -> tuple[str, list[Any]]:
        """`ids` as a subquery of one parameter: Django compiles an IN list of thousands of values one by one. The
        parameter is the array's text: psycopg dumps a list of integers item by item in Python, 3 ms of the API
        search's CPU per request (bench.catalog, API search), where PostgreSQL parses the text in microseconds."""
        return "SELECT unnest(%s::bigint[])", ["{" + ",".join(str(int(i)) for i in ids) + "}"]

    def rank(self, plan: SearchPlan, entry_id: str) -> tuple[str, list[Any]]:
        """Relevance of the entry whose id is the SQL `entry_id`, higher first."""
        tsquery, params = self.tsquery(plan)
        sql = f"(SELECT ts_rank(search_vector, {tsquery}) FROM catalog_search_row WHERE entry_id = {entry_id})"  # noqa: S608
        return sql, params


@dataclass
class SqliteIndex:
    vendor: str = "sqlite"
    name: str = "SQLite FTS5 with typo corrections"

    def vocabulary(self, *, words: Sequence[str], prefixes: Sequence[str]) -> tuple[set[str], set[str]]:
        # fts5vocab answers `term = ?` and term ranges from the index itself, one seek each.
        prefix_checks = " UNION ALL ".join(
            ["SELECT 'prefix', %s WHERE EXISTS (SELECT 1 FROM catalog_search_vocab WHERE term > %s AND term < %s)"]
            * len(prefixes)
        )
        sql = "SELECT 'word', term FROM catalog_search_vocab WHERE term IN (SELECT value FROM json_each(%s))"
        params: list[Any] = [_json_list(words)]
        if prefixes:
            sql += " UNION ALL " + prefix_checks
            params += [value for prefix in prefixes for value in (prefix, prefix, _upper_bound(prefix))]
        return _vocabulary(sql, params)

    def match(self, plan: SearchPlan) -> str:
        """An FTS5 query: each term a prefix, or-ed with its corrections; terms and-ed."""
        parts = []
        for term in plan.terms:
            typed = f'"{term.text}"*' if len(term.text) > 1 else f'"{term.text}"'
            parts.append("(" + " OR ".join([typed, *(f'"{word}"' for word in term.corrections)]) + ")")
        return " AND ".join(parts)

    def entry_ids(self, plan: SearchPlan, kind: str = "") -> tuple[str, list[Any]]:
        """The ids of the entries matching `plan` (the caller filters by `kind`: FTS5 does not index it)."""
        return "SELECT rowid FROM catalog_search_fts WHERE catalog_search_fts MATCH %s", [self.match(plan)]

    def id_list(self, ids: Sequence[int]) -> tuple[str, list[Any]]:
        return "SELECT value FROM json_each(%s)", [_json_list(ids)]

    def rank(self, plan: SearchPlan, entry_id: str) -> tuple[str, list[Any]]:
        # bm25 is lower for better matches: negated, so that higher is better on both databases.
        sql = (
            "(SELECT -bm25(catalog_search_fts) FROM catalog_search_fts "  # noqa: S608
            f"WHERE catalog_search_fts MATCH %s AND rowid = {entry_id})"
        )
        return sql, [self.match(plan)]


class EntityRank(Expression):
    """How well the agent or tool of the row in hand (its `pk`) matches the plan, higher first: the index's rank
    of its catalog entry. An expression rather than RawSQL so the row's column is named as the query aliases it."""

    output_field = FloatField()

    def __init__(self, plan: SearchPlan, kind: str, pk: Any = None) -> None:
        super().__init__()
        self.plan, self.kind, self.pk = plan, kind, pk if pk is not None else F("pk")

    def get_source_expressions(self) -> list[Any]:
        return [self.pk]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.pk,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        pk_sql, pk_params = compiler.compile(self.pk)
        entry = f"(SELECT id FROM catalog_catalogentry WHERE kind = %s AND entity_id = {pk_sql})"  # noqa: S608
        sql, params = index().rank(self.plan, entry)
        return sql, [*params, self.kind, *pk_params]


def _json_list(values: Iterable[Any]) -> str:
    return json.dumps(list(values))


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The one place this module sends its hand-written statements: full-text matching, ranking and facet counts
    over the search index, which the ORM cannot express on both databases (bench.catalog: search p95)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _vocabulary(sql: str, params: list[Any]) -> tuple[set[str], set[str]]:
    found: dict[str, set[str]] = {"word": set(), "prefix": set()}
    for kind, value in _rows(sql, params):
        found[kind].add(value)
    return found["word"], found["prefix"]


_INDEXES: dict[str, PostgresIndex | SqliteIndex] = {"postgresql": PostgresIndex(), "sqlite": SqliteIndex()}


def index() -> PostgresIndex | SqliteIndex:
    """The search index of the database in use."""
    return _INDEXES[connection.vendor]


# --- the catalog page's counting and paging engines -------------------------------------------------------------

RANK_AT_MOST = 2000  # more matches than this are shown in name order: ranking them costs more than it tells
SORT_MATCHES_AT_MOST = 5000
# The facets a PostgreSQL search row stores as one combination id (catalog_search_facets); owner is its own column.
COMBINED_FACETS = ("kind", "risk_tier", "lifecycle", "status", "autonomy_level", "data_class", "tool_kind")
FACET_NAMES = ("kind", "risk_tier", "owner", "lifecycle", "status", "autonomy_level", "data_class", "tool_kind")
ORDER = {
    "relevance": ("-rank", "name", "kind"),
    "name": ("name", "kind"),
    "-risk": ("-risk_rank", "name", "kind"),
    "risk": ("risk_rank", "name", "kind"),
    "-updated": ("-updated_at", "name", "kind"),
}


@dataclass
class Counted:
    """A search's total and facet counts ({facet: [(value, count), ...]}, commonest first) and its plan."""

    facets: dict[str, list[tuple[Any, int]]]
    total: int
    plan: SearchPlan


@dataclass
class Selection:
    """What a catalog search selects: the plan of its words, facet values ({facet: [values]}) and a tag."""

    plan: SearchPlan
    filters: dict[str, list[str]]
    tag: str = ""

    def autonomy_levels(self) -> list[str]:
        return [v for v in self.filters.get("autonomy_level", []) if v.isascii() and v.isdigit()]


def count(selection: Selection, *, with_facets: bool) -> Counted:
    if connection.vendor == "postgresql":
        return _RowTableSearch(selection).count(with_facets=with_facets)
    return _EntrySearch(selection).count(with_facets=with_facets)


def page_ids(selection: Selection, *, sort: str, total: int, offset: int, limit: int) -> list[int]:
    """The CatalogEntry ids of one page of the selection, in `sort` order."""
    if sort == "relevance" and (total > RANK_AT_MOST or not selection.plan.terms):
        sort = "name"
    if connection.vendor == "postgresql":
        return _RowTableSearch(selection).page_ids(sort=sort, total=total, offset=offset, limit=limit)
    return _EntrySearch(selection).page_ids(sort=sort, offset=offset, limit=limit)


class _EntrySearch:
    """SQLite: the ORM over CatalogEntry, its words matched by the FTS5 index; a GROUP BY per facet."""

    def __init__(self, selection: Selection) -> None:
        from catalog.models import CatalogEntry

        entries = CatalogEntry.objects.all()
        if selection.plan.matches_nothing:
            entries = entries.none()
        elif selection.plan:
            entries = entries.filter(id__in=RawSQL(*index().entry_ids(selection.plan)))  # noqa: S611 - full-text search
        for name, chosen in selection.filters.items():
            if name == "autonomy_level":
                entries = entries.filter(autonomy_level__in=[int(v) for v in selection.autonomy_levels()])
            elif name == "owner":
                entries = entries.filter(owner__name__in=chosen)
            else:
                entries = entries.filter(**{f"{name}__in": chosen})
        if selection.tag:
            entries = entries.filter(tags__icontains=f'"{selection.tag}"')  # JSON text: the quoted element
        self.selection = selection
        self.matches = entries.order_by()

    def count(self, *, with_facets: bool) -> Counted:
        facets = {}
        if with_facets:
            for name in FACET_NAMES:
                column = "owner__name" if name == "owner" else name
                rows = self.matches.values_list(column).annotate(n=Count("pk")).order_by("-n", column)
                facets[name] = list(rows)
        return Counted(facets=facets, total=self.matches.count(), plan=self.selection.plan)

    def page_ids(self, *, sort: str, offset: int, limit: int) -> list[int]:
        matches = self.matches
        if sort == "relevance":
            matches = matches.annotate(rank=RawSQL(*index().rank(self.selection.plan, '"catalog_catalogentry"."id"')))  # noqa: S611 - full-text ranking
        return list(matches.order_by(*ORDER[sort]).values_list("id", flat=True)[offset : offset + limit])


class _RowTableSearch:
    """PostgreSQL: full-text search, filters, counts and order over catalog_search_row (migration 0004), one narrow
    row per entry whose tsvector also holds a token per facet value and tag, so words, facets and tags are one GIN
    lookup. Only the page's entries are read from the wide catalog table."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection

    @planned_for_each_value()  # a generic plan is blind to how common the words are
    def count(self, *, with_facets: bool) -> Counted:
        where, params = self._where()
        plan = self.selection.plan
        if not with_facets:
            [(total,)] = _rows(f"SELECT count(*) FROM catalog_search_row AS s WHERE {where}", params)  # noqa: S608
            return Counted(facets={}, total=int(total), plan=plan)
        # One scan of the matches counts them per facet combination, per owner and in all; the combinations are
        # then spelt out into their seven facets.
        sql = f"""
            WITH counted AS (
                SELECT GROUPING(s.facets_id, s.owner_id) AS unrolled, s.facets_id, s.owner_id, count(*) AS n
                FROM catalog_search_row AS s WHERE {where}
                GROUP BY GROUPING SETS ((s.facets_id), (s.owner_id), ())
            )
            SELECT c.unrolled, c.n, t.name, {", ".join(f"f.{name}" for name in COMBINED_FACETS)}
            FROM counted AS c
            LEFT JOIN catalog_search_facets AS f ON f.id = c.facets_id
            LEFT JOIN catalog_team AS t ON t.id = c.owner_id
        """  # noqa: S608
        counts: dict[str, dict[Any, int]] = {name: {} for name in FACET_NAMES}
        total = 0
        for unrolled, n, owner, *values in _rows(sql, params):
            # GROUPING() sets a bit for each column a row is not grouped by: 0b01 per combination, 0b10 per owner.
            if unrolled == 0b11:
                total = n
            elif unrolled == 0b10:
                counts["owner"][owner] = n
            else:
                for name, value in zip(COMBINED_FACETS, values, strict=True):
                    counts[name][value] = counts[name].get(value, 0) + n
        facets = {name: sorted(c.items(), key=lambda item: (-item[1], str(item[0]))) for name, c in counts.items()}
        return Counted(facets=facets, total=total, plan=plan)

    def _where(self) -> tuple[str, list[Any]]:
        if self.selection.plan.matches_nothing:
            return "FALSE", []
        tokens: list[str] = []
        for name in COMBINED_FACETS:
            chosen = self.selection.filters.get(name)
            if chosen is None:
                continue
            if name == "autonomy_level":
                chosen = self.selection.autonomy_levels()
            if not chosen:
                return "FALSE", []
            tokens.append("(" + " | ".join(_token(name, value) for value in chosen) + ")")
        if self.selection.tag:
            tokens.append(_token("tag", self.selection.tag))
        clauses: list[str] = []
        params: list[Any] = []
        # Two conditions on the same GIN index are one index scan that intersects them.
        if self.selection.plan:
            tsquery, tsquery_params = PostgresIndex().tsquery(self.selection.plan)
            clauses.append(f"s.search_vector @@ {tsquery}")
            params += tsquery_params
        if tokens:
            clauses.append("s.search_vector @@ %s::tsquery")
            params.append(" & ".join(tokens))
        if "owner" in self.selection.filters:
            clauses.append("s.owner_id IN (SELECT id FROM catalog_team WHERE name = ANY(%s::text[]))")
            params.append(self.selection.filters["owner"])
        return " AND ".join(clauses) or "TRUE", params

    @planned_for_each_value()  # a generic plan is blind to how common the words are
    def page_ids(self, *, sort: str, total: int, offset: int, limit: int) -> list[int]:
        where, params = self._where()
        order = ", ".join(f"{column[1:]} DESC" if column[0] == "-" else column for column in ORDER[sort])
        if sort == "relevance" or total <= SORT_MATCHES_AT_MOST:
            # Collect the matches, then sort them. Left alone, the planner may walk the name index hoping to meet
            # matches early; when they are few, or cluster (every "s-slack-*" tool), it walks most of the catalog.
            rank = ""
            rank_params: list[Any] = []
            if sort == "relevance":
                tsquery, rank_params = PostgresIndex().tsquery(self.selection.plan)
                rank = f", ts_rank(s.search_vector, {tsquery}) AS rank"
            sql = f"""
                WITH matches AS MATERIALIZED (
                    SELECT s.entry_id, s.name, s.kind, s.risk_rank, s.updated_at{rank}
                    FROM catalog_search_row AS s WHERE {where}
                )
                SELECT entry_id FROM matches ORDER BY {order} LIMIT %s OFFSET %s
            """  # noqa: S608
            params = [*rank_params, *params, limit, offset]
        else:
            # Many matches: walking the (name) or (updated_at) index meets the first page within a few rows.
            sql = f"SELECT s.entry_id FROM catalog_search_row AS s WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s"  # noqa: S608
            params = [*params, limit, offset]
        return [row[0] for row in _rows(sql, params)]


def _token(facet: str, value: str) -> str:
    """A facet token as a quoted tsquery lexeme (quotes and backslashes doubled), as migration 0004 stores it."""
    escaped = f"{FACET_MARK}{facet}={value}".replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'"
