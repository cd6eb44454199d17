"""Catalog reads. Every signed-in user reads the whole catalog; writes are checked in services.

The catalog page filters, facets, sorts and pages over one indexed search row per agent and tool (on PostgreSQL
the narrow `catalog_search_row` of migration 0004, on SQLite `CatalogEntry` itself), so its query count is
constant and it never loads the whole catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Prefetch,
    Q,
    QuerySet,
)
from django.db.models.expressions import RawSQL
from django.urls import reverse
from guardian.models import GroupObjectPermission, UserObjectPermission

from catalog.models import (
    Agent,
    AIModel,
    Capability,
    CatalogEntry,
    Location,
    Team,
    TeamMembership,
    Tool,
    ToolGrant,
)
from catalog.risk import Tier
from catalog.search_cache import TTL_SECONDS, counts_key
from portal.db import cache_prefetched, model_columns, models_from_row, planned_for_each_value, select_instances

FACETS: tuple[tuple[str, str], ...] = (
    ("kind", "Kind"),
    ("risk_tier", "Risk tier"),
    ("owner", "Owner"),
    ("lifecycle", "Lifecycle"),
    ("status", "Status"),
    ("autonomy_level", "Autonomy level"),
    ("data_class", "Data class"),
    ("tool_kind", "Tool kind"),
)
FACET_FIELDS = {"owner": "owner__name"}
SORTS = {
    "relevance": None,
    "name": ("name", "kind"),
    "-risk": ("-risk_rank", "name"),
    "risk": ("risk_rank", "name"),
    "-updated": ("-updated_at", "name"),
}
MAX_QUERY_LENGTH = 200
OWNER_FACET_LIMIT = 15
TIER_ORDER = {tier.value: tier.rank for tier in Tier}


@dataclass
class CatalogQuery:
    q: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    tag: str = ""
    sort: str = "name"
    page: int = 1
    page_size: int = 25

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CatalogQuery:
        """Parse query-string style parameters (QueryDict or dict of lists/strings); bad values are ignored."""

        def values(name: str) -> list[str]:
            raw = params.getlist(name) if hasattr(params, "getlist") else params.get(name, [])
            raw = [raw] if isinstance(raw, str) else list(raw or [])
            return [str(v)[:100] for v in raw if str(v).strip()][:20]

        q = str(params.get("q") or "").strip()[:MAX_QUERY_LENGTH]
        sort = str(params.get("sort") or ("relevance" if q else "name"))
        if sort not in SORTS or (sort == "relevance" and not q):
            sort = "name"
        try:
            page = max(1, int(params.get("page") or 1))
        except (TypeError, ValueError):
            page = 1
        try:
            page_size = min(100, max(1, int(params.get("page_size") or 25)))
        except (TypeError, ValueError):
            page_size = 25
        filters = {name: values(name) for name, _ in FACETS if values(name)}
        return cls(
            q=q, filters=filters, tag=str(params.get("tag") or "")[:100], sort=sort, page=page, page_size=page_size
        )


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass
class CatalogPage:
    query: CatalogQuery
    entries: list[CatalogEntry]
    total: int
    facets: list[tuple[str, str, list[FacetValue]]]
    page_number: int
    num_pages: int
    # PostgreSQL: the misspelt search words that were also read as these catalog words, e.g. {"kubernets": [...]}.
    corrections: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        return self.page_number < self.num_pages

    @property
    def has_previous(self) -> bool:
        return self.page_number > 1


def _search_terms(q: str) -> list[str]:
    return [term for term in re.split(r"\s+", q.lower()) if term][:8]


TYPO_FALLBACK_BELOW = 5
CORRECTIONS_PER_WORD = 3
RANK_AT_MOST = 2000
SORT_MATCHES_AT_MOST = 5000
CORRECTABLE_WORD = re.compile(r"[^\W\d_]{3,}")
# The facets a search row stores as one combination id (catalog_search_facets); owner is a column of its own.
COMBINED_FACETS = ("kind", "risk_tier", "lifecycle", "status", "autonomy_level", "data_class", "tool_kind")
PG_ORDER = {
    "relevance": "rank DESC, name, kind",
    "name": "name, kind",
    "-risk": "risk_rank DESC, name, kind",
    "risk": "risk_rank, name, kind",
    "-updated": "updated_at DESC, name, kind",
}


@dataclass
class _Counted:
    facets: dict[str, list[tuple[Any, int]]]
    total: int
    corrections: dict[str, list[str]]


def catalog_search(
    *, user: AbstractBaseUser | AnonymousUser, query: CatalogQuery, with_facets: bool = True
) -> CatalogPage:
    """Facet counts with the total (shared between pages and visitors until the next catalog write, see
    search_cache), then the page's ids and the page's entries: at most five queries whatever the catalog's size."""
    search = _PostgresSearch(query) if connection.vendor == "postgresql" else _SubstringSearch(query)
    key = counts_key({"q": query.q, "filters": query.filters, "tag": query.tag, "facets": with_facets})
    counted = cache.get(key)
    if counted is None:
        counted = search.count(with_facets=with_facets)
        cache.set(key, counted, TTL_SECONDS)
    search.corrections = counted.corrections
    sort = query.sort
    if sort == "relevance" and counted.total > RANK_AT_MOST:
        # Ranking thousands of equally plausible matches costs more than it tells; name order instead.
        sort = "name"
    num_pages = max(1, -(-counted.total // query.page_size))
    page_number = min(query.page, num_pages)
    offset = (page_number - 1) * query.page_size
    entries = search.page(sort=sort, total=counted.total, offset=offset, limit=query.page_size)
    return CatalogPage(
        query=query,
        entries=entries,
        total=counted.total,
        facets=_facet_counts(counted.facets, query) if with_facets else [],
        page_number=page_number,
        num_pages=num_pages,
        corrections=counted.corrections,
    )


class _PostgresSearch:
    """Full-text search, filters, counts and order over catalog_search_row (migration 0004): one narrow row per
    entry whose tsvector also holds a token per facet value and tag, so words, facets and tags are one GIN lookup.
    Only the page's entries are read from the wide catalog table.

    When the search finds almost nothing, its unknown words are corrected against the vocabulary of names, titles,
    tags and capability names (catalog_search_word), and the entries matching the corrected reading are added."""

    def __init__(self, query: CatalogQuery) -> None:
        self.query = query
        self.corrections: dict[str, list[str]] = {}

    def count(self, *, with_facets: bool) -> _Counted:
        counted = self._count(with_facets)
        if self.query.q and counted.total < TYPO_FALLBACK_BELOW:
            self.corrections = _corrections(self.query.q)
            if self.corrections:
                counted = self._count(with_facets)
        return counted

    @planned_for_each_value()  # a generic plan is blind to how common the words are
    def _count(self, with_facets: bool) -> _Counted:
        where, params = self._where()
        if not with_facets:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM catalog_search_row AS s WHERE {where}", params)  # noqa: S608
                return _Counted(facets={}, total=int(cursor.fetchone()[0]), corrections=self.corrections)
        # One scan of the matches counts them per facet combination, per owner and in all; the combinations are
        # then spelt out into their seven facets. Only our own SQL is interpolated; every value is a parameter.
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
        counts: dict[str, dict[Any, int]] = {name: {} for name, _ in FACETS}
        total = 0
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        for unrolled, n, owner, *values in rows:
            # GROUPING() sets a bit for each column a row is not grouped by: 0b01 per combination, 0b10 per owner.
            if unrolled == 0b11:
                total = n
            elif unrolled == 0b10:
                counts["owner"][owner] = n
            else:
                for name, value in zip(COMBINED_FACETS, values, strict=True):
                    counts[name][value] = counts[name].get(value, 0) + n
        facets = {name: sorted(c.items(), key=lambda item: (-item[1], str(item[0]))) for name, c in counts.items()}
        return _Counted(facets=facets, total=total, corrections=self.corrections)

    def _tsquery(self) -> tuple[str, list[Any]]:
        """The search words as typed (websearch syntax), or-ed with the corrected reading, in which each misspelt
        word may also be any of its corrections."""
        q = self.query.q
        if not q:
            return "", []
        typed = "websearch_to_tsquery('simple', %s)"
        if not self.corrections:
            return typed, [q]
        parts: list[str] = []
        params: list[Any] = []
        for term in _search_terms(q):
            if term in self.corrections:
                # Corrected terms and vocabulary words are letters only: safe as to_tsquery operands.
                parts.append("(plainto_tsquery('simple', %s) || to_tsquery('simple', %s))")
                params += [term, " | ".join(self.corrections[term])]
            else:
                parts.append(typed)
                params.append(term)
        return f"({typed} || ({' && '.join(parts)}))", [q, *params]

    def _where(self) -> tuple[str, list[Any]]:
        tokens: list[str] = []
        for name in COMBINED_FACETS:
            chosen = self.query.filters.get(name)
            if chosen is None:
                continue
            if name == "autonomy_level":
                chosen = [v for v in chosen if v.isascii() and v.isdigit()]
            if not chosen:
                return "FALSE", []
            tokens.append("(" + " | ".join(_token(name, value) for value in chosen) + ")")
        if self.query.tag:
            tokens.append(_token("tag", self.query.tag))
        tsquery, tsquery_params = self._tsquery()
        clauses: list[str] = []
        params: list[Any] = []
        # Two conditions on the same GIN index are one index scan that intersects them. (Not one tsquery: a search
        # of only punctuation makes an empty tsquery, which matches nothing alone but vanishes from an AND.)
        if tsquery:
            clauses.append(f"s.search_vector @@ {tsquery}")
            params += tsquery_params
        if tokens:
            clauses.append("s.search_vector @@ %s::tsquery")
            params.append(" & ".join(tokens))
        if "owner" in self.query.filters:
            clauses.append("s.owner_id IN (SELECT id FROM catalog_team WHERE name = ANY(%s::text[]))")
            params.append(self.query.filters["owner"])
        return " AND ".join(clauses) or "TRUE", params

    @planned_for_each_value()  # a generic plan is blind to how common the words are
    def page(self, *, sort: str, total: int, offset: int, limit: int) -> list[CatalogEntry]:
        where, params = self._where()
        order = PG_ORDER[sort]
        if sort == "relevance" or total <= SORT_MATCHES_AT_MOST:
            # Collect the matches, then sort them. Left alone, the planner may walk the name index hoping to meet
            # matches early; when they are few, or cluster (every "s-slack-*" tool), it walks most of the catalog.
            tsquery, tsquery_params = self._tsquery()
            rank = f", ts_rank(s.search_vector, {tsquery}) AS rank" if sort == "relevance" else ""
            sql = f"""
                WITH matches AS MATERIALIZED (
                    SELECT s.entry_id, s.name, s.kind, s.risk_rank, s.updated_at{rank}
                    FROM catalog_search_row AS s WHERE {where}
                )
                SELECT entry_id FROM matches ORDER BY {order} LIMIT %s OFFSET %s
            """  # noqa: S608
            params = [*(tsquery_params if rank else []), *params, limit, offset]
        else:
            # Many matches: walking the (name) or (updated_at) index meets the first page within a few rows.
            sql = f"SELECT s.entry_id FROM catalog_search_row AS s WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s"  # noqa: S608
            params = [*params, limit, offset]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids = [row[0] for row in cursor.fetchall()]
        # The long search columns are only for matching; never ship them to the page.
        by_id = CatalogEntry.objects.select_related("owner").defer("search_text", "search_names").in_bulk(ids)
        return [by_id[pk] for pk in ids if pk in by_id]


@planned_for_each_value()  # a generic plan is blind to how common the words are
def _corrections(q: str) -> dict[str, list[str]]:
    """{misspelt word: [the catalog words it may mean]}: the closest few vocabulary words by trigram word
    similarity (pg_trgm's `%>`), for each search word of three or more letters that the vocabulary lacks."""
    candidates = [term for term in _search_terms(q) if CORRECTABLE_WORD.fullmatch(term)]
    if not candidates:
        return {}
    sql = """
        SELECT t.term, ARRAY(
            SELECT w.word FROM catalog_search_word AS w
            WHERE w.word %%> t.term
            ORDER BY word_similarity(t.term, w.word) DESC, similarity(t.term, w.word) DESC, w.word
            LIMIT %s
        )
        FROM unnest(%s::text[]) AS t(term)
        WHERE NOT EXISTS (SELECT FROM catalog_search_word AS known WHERE known.word = t.term)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [CORRECTIONS_PER_WORD, candidates])
        return {term: list(words) for term, words in cursor.fetchall() if words}


def _token(facet: str, value: str) -> str:
    """A facet token as a quoted tsquery lexeme (quotes and backslashes doubled), as migration 0004 stores it."""
    escaped = f"{facet}={value}".replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'"


class _SubstringSearch:
    """SQLite: every search word must occur in the entry's search text; facets counted one GROUP BY each."""

    def __init__(self, query: CatalogQuery) -> None:
        self.query = query
        self.corrections: dict[str, list[str]] = {}
        entries = CatalogEntry.objects.all()
        for term in _search_terms(query.q):
            entries = entries.filter(search_text__contains=term)
        for name, chosen in query.filters.items():
            if name == "autonomy_level":
                levels = [int(v) for v in chosen if v.isascii() and v.isdigit()]
                entries = entries.filter(autonomy_level__in=levels)
            else:
                entries = entries.filter(**{f"{FACET_FIELDS.get(name, name)}__in": chosen})
        if query.tag:
            entries = entries.filter(tags__icontains=f'"{query.tag}"')
        self.matches = entries.order_by()

    def count(self, *, with_facets: bool) -> _Counted:
        facets = {}
        if with_facets:
            for name, _ in FACETS:
                column = FACET_FIELDS.get(name, name)
                rows = self.matches.values(column).annotate(n=Count("pk")).order_by("-n", column)
                facets[name] = [(row[column], row["n"]) for row in rows]
        return _Counted(facets=facets, total=self.matches.count(), corrections={})

    def page(self, *, sort: str, total: int, offset: int, limit: int) -> list[CatalogEntry]:
        # No ranking on SQLite: relevance is name order.
        ordered = self.matches.order_by(*(SORTS[sort] or ("name", "kind")))
        return list(ordered.select_related("owner").defer("search_text", "search_names")[offset : offset + limit])


def _facet_counts(
    raw: dict[str, list[tuple[Any, int]]], query: CatalogQuery
) -> list[tuple[str, str, list[FacetValue]]]:
    results: list[tuple[str, str, list[FacetValue]]] = []
    for name, label in FACETS:
        rows = raw.get(name, [])
        if name == "owner":
            rows = rows[:OWNER_FACET_LIMIT]
        chosen = set(query.filters.get(name, []))
        values = [
            FacetValue(value=str(value), label=_facet_label(name, value), count=n, selected=str(value) in chosen)
            for value, n in rows
            if value not in (None, "")
        ]
        if name == "risk_tier":
            values.sort(key=lambda v: TIER_ORDER.get(v.value, 9))
        elif name in {"autonomy_level", "lifecycle", "status", "data_class", "kind", "tool_kind"}:
            values.sort(key=lambda v: v.value)
        results.append((name, label, values))
    return results


def _facet_label(name: str, raw: Any) -> str:
    if name == "autonomy_level":
        return Agent.Autonomy(int(raw)).label
    if name == "tool_kind":
        return str(Tool.Kind(raw).label) if raw in Tool.Kind.values else str(raw)
    return str(raw).replace("_", " ")


# --- entities ----------------------------------------------------------------------------------------------


def agent_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Agent]:
    return Agent.objects.select_related("owner").prefetch_related("models_used", "calls").order_by("name")


def tool_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Tool]:
    return Tool.objects.select_related("owner").prefetch_related("capabilities").order_by("name")


Row = dict[str, Any]
CAPABILITY_COLUMNS = ("name", "description", "read_only", "destructive", "idempotent", "open_world")


class EntityRows:
    """Filtered, ordered agents or tools for a paginator: `count()` counts the entities and a slice reads that page
    as plain rows of `id` and `columns`, with their to-many relations added by `relate`. For the API lists, which
    spent more CPU on model instances and prefetches than on the rest of the request. Counting the entities rather
    than the rows keeps the owner join that `owner__name` needs out of the count."""

    def __init__(self, entities: QuerySet[Any], *, columns: Sequence[str], relate: Callable[[list[Row]], None]) -> None:
        self.entities = entities.prefetch_related(None)
        self.columns = columns
        self.relate = relate
        self.ordered = entities.ordered  # read by Paginator

    def count(self) -> int:
        return self.entities.count()

    def __getitem__(self, page: slice) -> list[Row]:
        rows = list(self.entities.values("id", *self.columns)[page])
        self.relate(rows)
        return rows


def agent_list_rows(*, agents: QuerySet[Agent], columns: Sequence[str]) -> EntityRows:
    """`agents` as plain rows; each has `models_used` and `calls`, the names of its models and of the agents it calls."""
    return EntityRows(agents, columns=columns, relate=_add_agent_relations)


def tool_list_rows(*, tools: QuerySet[Tool], columns: Sequence[str]) -> EntityRows:
    """`tools` as plain rows; each has `capabilities`, rows of CAPABILITY_COLUMNS."""
    return EntityRows(tools, columns=columns, relate=_add_capabilities)


def _in_list(ids: Collection[Any]) -> str:
    return ", ".join(["%s"] * len(ids))


# The relations of a page in one query each, in SQL: compiling them with the ORM cost several times what running
# them does. Both keep the order of the prefetches they replace (the related model's `ordering`, name).
def _add_agent_relations(rows: list[Row]) -> None:
    by_id = {row["id"]: row for row in rows}
    for row in rows:
        row["models_used"], row["calls"] = [], []
    if not by_id:
        return
    ids = _in_list(by_id)
    sql = f"""
        SELECT u.agent_id, 'models_used', m.name
        FROM {_quoted(Agent.models_used.through)} AS u JOIN {_quoted(AIModel)} AS m ON m.id = u.aimodel_id
        WHERE u.agent_id IN ({ids})
        UNION ALL
        SELECT c.from_agent_id, 'calls', a.name
        FROM {_quoted(Agent.calls.through)} AS c JOIN {_quoted(Agent)} AS a ON a.id = c.to_agent_id
        WHERE c.from_agent_id IN ({ids})
        ORDER BY 3
    """  # noqa: S608 - names only; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [*by_id, *by_id])
        for agent_id, relation, name in cursor.fetchall():
            by_id[agent_id][relation].append(name)


def _add_capabilities(rows: list[Row]) -> None:
    by_id = {row["id"]: row for row in rows}
    for row in rows:
        row["capabilities"] = []
    if not by_id:
        return
    sql = f"""
        SELECT tool_id, {", ".join(CAPABILITY_COLUMNS)} FROM {_quoted(Capability)}
        WHERE tool_id IN ({_in_list(by_id)}) ORDER BY name
    """  # noqa: S608 - names only; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, list(by_id))
        for tool_id, *values in cursor.fetchall():
            by_id[tool_id]["capabilities"].append(dict(zip(CAPABILITY_COLUMNS, values, strict=True)))


def grant_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ToolGrant]:
    return ToolGrant.objects.select_related("agent", "tool", "agent__owner", "tool__owner", "requested_by").order_by(
        "agent__name", "tool__name"
    )


def model_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[AIModel]:
    return AIModel.objects.order_by("name")


def team_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Team]:
    return Team.objects.select_related("parent").order_by("name")


def location_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Location]:
    return Location.objects.select_related("default_owner").order_by("target")


# What a grant row shows of the entity at its other end is its name, title and owner: the long text and JSON
# columns (a tool's definition can be a whole OpenAPI document) stay in the database.
_LONG_ENTITY_FIELDS = ("description", "tags", "links", "annotations", "risk")
_LONG_TOOL_FIELDS = (*_LONG_ENTITY_FIELDS, "secret_names", "packages", "remotes", "definition")


def related_without_long_fields(relation: str, model: type[Agent] | type[Tool]) -> tuple[str, ...]:
    names = _LONG_TOOL_FIELDS if model is Tool else _LONG_ENTITY_FIELDS
    return tuple(f"{relation}__{name}" for name in names)


def _agent_grants() -> Prefetch:
    grants = (
        ToolGrant.objects.select_related("tool", "tool__owner")
        .defer(*related_without_long_fields("tool", Tool))
        .order_by("tool__name", "environment")
    )
    return Prefetch("grants", queryset=grants)


def _tool_grants() -> Prefetch:
    grants = (
        ToolGrant.objects.select_related("agent", "agent__owner")
        .defer(*related_without_long_fields("agent", Agent))
        .order_by("agent__name", "environment")
    )
    return Prefetch("grants", queryset=grants)


def agent_detail(*, name: str) -> Agent:
    return (
        Agent.objects.select_related("owner")
        .prefetch_related("models_used", "calls", "called_by", _agent_grants())
        .get(name=name.lower())
    )


def tool_detail(*, name: str) -> Tool:
    return Tool.objects.select_related("owner").prefetch_related("capabilities", _tool_grants()).get(name=name.lower())


@dataclass(frozen=True)
class ViewerAccess:
    """What one user may do with an entity, answered by the query that loaded it for its page: `maintains_owner`, a
    maintainer membership of the owning team (which is what lets owners edit); `may_change`, a guardian change
    permission given explicitly, to them or to one of their groups. `services.can_edit` and
    `services.can_create_for` read it instead of asking the database again; platform admins are theirs to add."""

    user_id: Any
    may_change: bool
    maintains_owner: bool


_VIEWER_ACCESS = "_viewer_access"


def known_access(subject: Agent | Tool | Team, user: AbstractBaseUser | AnonymousUser) -> ViewerAccess | None:
    """The access the page query recorded on this entity (or on its owner team) for this user, if it did."""
    access: ViewerAccess | None = subject.__dict__.get(_VIEWER_ACCESS)
    return access if access is not None and access.user_id == user.pk else None


def _quoted(model: type[Any], column: str = "") -> str:
    table = connection.ops.quote_name(model._meta.db_table)
    return f"{table}.{connection.ops.quote_name(column)}" if column else table


def change_permission_held(*, user: AbstractBaseUser, model: type[Agent] | type[Tool]) -> RawSQL:
    """True for the rows of `model` on which the user was given its change permission, directly or through one of
    their groups: the rows guardian's `get_perms` reads for an active user, as one condition instead of two queries.
    Guardian gives an inactive user nothing; that rule is `services.can_edit`'s, as is the owners' right to edit.

    SQL rather than the ORM: building and compiling these subqueries with the ORM cost more Python per page than the
    rest of the entity query, and guardian's joins (auth_group, auth_permission) quadrupled PostgreSQL's planning."""
    content_type = ContentType.objects.get_for_model(model)
    on_the_row = f"""p.content_type_id = %s
        AND p.object_pk = CAST({_quoted(model, model._meta.pk.column)} AS varchar(255))
        AND p.permission_id = (SELECT id FROM {_quoted(Permission)} WHERE content_type_id = %s AND codename = %s)"""  # noqa: S608 - names only; values are parameters
    row_params = [content_type.pk, content_type.pk, f"change_{model._meta.model_name}"]
    user_groups = _quoted(get_user_model().groups.through)
    sql = f"""(
        EXISTS (SELECT 1 FROM {_quoted(UserObjectPermission)} AS p WHERE p.user_id = %s AND {on_the_row})
        OR EXISTS (
            SELECT 1 FROM {_quoted(GroupObjectPermission)} AS p
            WHERE p.group_id IN (SELECT group_id FROM {user_groups} WHERE user_id = %s) AND {on_the_row}
        )
    )"""  # noqa: S608 - as above
    return RawSQL(sql, [user.pk, *row_params, user.pk, *row_params], output_field=BooleanField())  # noqa: S611


def maintains_owner(*, user: AbstractBaseUser, model: type[Agent] | type[Tool]) -> RawSQL:
    """True for the rows of `model` whose owning team the user maintains: the owners' right to edit, and
    `services.can_create_for`'s rule. In SQL for the same reason."""
    sql = f"""EXISTS (
        SELECT 1 FROM {_quoted(TeamMembership)}
        WHERE team_id = {_quoted(model, "owner_id")} AND user_id = %s AND role = %s
    )"""  # noqa: S608 - names only; values are parameters
    return RawSQL(sql, [user.pk, TeamMembership.Role.MAINTAINER.value], output_field=BooleanField())  # noqa: S611


def _with_viewer_access(
    entities: QuerySet[Any], *, model: type[Agent] | type[Tool], user: AbstractBaseUser | AnonymousUser
) -> QuerySet[Any]:
    if not isinstance(user, AbstractBaseUser):
        return entities
    return entities.annotate(
        viewer_may_change=change_permission_held(user=user, model=model),
        viewer_maintains_owner=maintains_owner(user=user, model=model),
    )


def _record_viewer_access(entity: Agent | Tool, user: AbstractBaseUser | AnonymousUser) -> None:
    if not isinstance(user, AbstractBaseUser):
        return
    access = ViewerAccess(
        user_id=user.pk,
        may_change=bool(entity.viewer_may_change),  # type: ignore[union-attr]
        maintains_owner=bool(entity.viewer_maintains_owner),  # type: ignore[union-attr]
    )
    entity.__dict__[_VIEWER_ACCESS] = access
    entity.owner.__dict__[_VIEWER_ACCESS] = access


def agent_page_detail(*, name: str, user: AbstractBaseUser | AnonymousUser) -> Agent:
    """The agent for its page, with its owner, its grants (each with its tool and the tool's owner) and what `user`
    may do with it (ViewerAccess), in two queries. Its models and neighbours come from `agent_relations`; the page
    shows only their names."""
    agent = _page_entity(Agent, name, user)
    cache_prefetched(agent, "grants", _grants_with(Tool, grants_of=agent))
    return agent


def tool_page_detail(*, name: str, user: AbstractBaseUser | AnonymousUser) -> Tool:
    """The tool for its page, with its owner, its capabilities, its grants (each with its agent and the agent's
    owner) and what `user` may do with it (ViewerAccess), in three queries. The definition (can be a whole OpenAPI
    document) is not shown there."""
    tool = _page_entity(Tool, name, user, exclude=("definition",))
    cache_prefetched(tool, "capabilities", select_instances(Capability, "t.tool_id = %s", [tool.pk], order_by="t.name"))
    cache_prefetched(tool, "grants", _grants_with(Agent, grants_of=tool))
    return tool


# The entity pages are the catalog's most visited: their statements are written here, from the models' own table
# and column names, rather than composed by the ORM on every view (7 to 11 of their 20 ms of CPU went to that; the
# database spends well under 1 ms on them). `tool_detail` and `agent_detail` above are the ORM's answer, which the tests compare.


def _page_entity(
    model: type[Agent] | type[Tool], name: str, user: AbstractBaseUser | AnonymousUser, *, exclude: Sequence[str] = ()
) -> Any:
    table = _quoted(model)
    columns = [model_columns(model, table, exclude=exclude), model_columns(Team, "o")]
    params: list[Any] = []
    if isinstance(user, AbstractBaseUser):
        for access in (change_permission_held(user=user, model=model), maintains_owner(user=user, model=model)):
            columns.append(access.sql)
            params.extend(access.params)
    sql = (
        f"SELECT {', '.join(columns)} FROM {table} JOIN {_quoted(Team)} o ON o.id = {_quoted(model, 'owner_id')} "  # noqa: S608 - names only; values are parameters
        f"WHERE {_quoted(model, 'name')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, name.lower()])
        row = cursor.fetchone()
    if row is None:
        raise model.DoesNotExist(f"No {model._meta.verbose_name} is called {name!r}.")
    (entity, owner), access = models_from_row(row, (model, exclude), Team)
    entity._state.fields_cache["owner"] = owner
    if isinstance(user, AbstractBaseUser):
        entity.viewer_may_change, entity.viewer_maintains_owner = map(bool, access)  # SQLite: 0 or 1
        _record_viewer_access(entity, user)
    return entity


def _grants_with(other: type[Agent] | type[Tool], *, grants_of: Agent | Tool) -> list[ToolGrant]:
    """The grants of `grants_of`, each with the entity on the other side (less its long fields, as the page shows
    names and tiers) and that entity's owner, ordered by that entity's name and the environment."""
    long_fields = _LONG_TOOL_FIELDS if other is Tool else _LONG_ENTITY_FIELDS
    side = "agent_id" if other is Tool else "tool_id"
    other_side = "tool_id" if other is Tool else "agent_id"
    sql = (
        f"SELECT {model_columns(ToolGrant, 'g')}, {model_columns(other, 'x', exclude=long_fields)}, "  # noqa: S608 - names only; values are parameters
        f"{model_columns(Team, 'o')} FROM {_quoted(ToolGrant)} g "
        f"JOIN {_quoted(other)} x ON x.id = g.{other_side} JOIN {_quoted(Team)} o ON o.id = x.owner_id "
        f"WHERE g.{side} = %s ORDER BY x.name, g.environment"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [grants_of.pk])
        rows = cursor.fetchall()
    relation = other._meta.model_name
    grants = []
    for row in rows:
        (grant, entity, owner), _ = models_from_row(row, ToolGrant, (other, long_fields), Team)
        entity._state.fields_cache["owner"] = owner
        grant._state.fields_cache[relation] = entity
        grants.append(grant)
    return grants


@dataclass
class AgentRelations:
    models: list[dict[str, str]]
    calls: list[str]
    called_by: list[str]


def agent_relations(*, agent: Agent) -> AgentRelations:
    """The models an agent uses and the names of the agents it calls and is called by, as one query of the few
    columns its page shows (written here, as the page's other statements are)."""
    uses, calls = Agent.models_used.through, Agent.calls.through
    sql = f"""
        SELECT 'model', m.name, m.title, m.provider FROM {_quoted(uses)} u
            JOIN {_quoted(AIModel)} m ON m.id = u.aimodel_id WHERE u.agent_id = %s
        UNION ALL
        SELECT 'calls', a.name, '', '' FROM {_quoted(calls)} c
            JOIN {_quoted(Agent)} a ON a.id = c.to_agent_id WHERE c.from_agent_id = %s
        UNION ALL
        SELECT 'called_by', a.name, '', '' FROM {_quoted(calls)} c
            JOIN {_quoted(Agent)} a ON a.id = c.from_agent_id WHERE c.to_agent_id = %s
        ORDER BY 2"""  # noqa: S608 - names only; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [agent.pk] * 3)
        rows = cursor.fetchall()
    relations = AgentRelations(models=[], calls=[], called_by=[])
    for relation, name, title, provider in rows:
        if relation == "model":
            relations.models.append({"name": name, "title": title, "provider": provider})
        else:
            getattr(relations, relation).append(name)
    return relations


def team_detail(*, name: str) -> Team:
    members = TeamMembership.objects.select_related("user").order_by("-role", "user__username")
    return Team.objects.prefetch_related(Prefetch("memberships", queryset=members)).get(name=name.lower())


def team_owned(*, team: Team, limit: int = 200) -> dict[str, list[Any]]:
    return {
        "agents": list(Agent.objects.filter(owner=team).order_by("name")[:limit]),
        "tools": list(Tool.objects.filter(owner=team).order_by("name")[:limit]),
    }


def user_teams(*, user: AbstractBaseUser | AnonymousUser, maintainer_only: bool = False) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    memberships = TeamMembership.objects.filter(user=user)
    if maintainer_only:
        memberships = memberships.filter(role=TeamMembership.Role.MAINTAINER)
    return Team.objects.filter(pk__in=memberships.values("team_id")).order_by("name")


def entity_history(*, entity: Agent | Tool | Team, limit: int = 50) -> list[Any]:
    """The entity's own audit events and those of its grants, newest first, with the fields a page shows. The
    grants are those the page loaded with the entity (agent_page_detail, tool_page_detail)."""
    from portal.models import AuditEvent

    condition = Q(object_type=f"catalog.{entity._meta.model_name}", object_id=str(entity.pk))
    if isinstance(entity, Agent | Tool):
        grant_ids = [str(grant.pk) for grant in entity.grants.all()[:500]]
        if grant_ids:
            condition |= Q(object_type="catalog.toolgrant", object_id__in=grant_ids)
    events = AuditEvent.objects.filter(condition).order_by("-id")
    return list(events.values("occurred_at", "action", "actor_label", "changes")[:limit])


def owner_choices(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Team]:
    """Teams the user may file agents and tools under: those they maintain; every team for platform admins."""
    from portal.roles import user_is_platform_admin

    if user_is_platform_admin(user):
        return team_list(user=user)
    return user_teams(user=user, maintainer_only=True)


def catalog_dashboard_panels(*, user: AbstractBaseUser | AnonymousUser) -> list[dict[str, Any]]:
    index = reverse("catalog:index")
    tiers = dict(CatalogEntry.objects.values_list("risk_tier").annotate(n=Count("pk")).order_by())
    panels: list[dict[str, Any]] = [
        {
            "title": "Catalog",
            "value": sum(tiers.values()),
            "rows": [
                {"label": f"{tier.value}: {tiers.get(tier.value, 0)}", "url": f"{index}?risk_tier={tier.value}"}
                for tier in reversed(list(Tier))
            ],
            "url": index,
            "link_label": "Browse the catalog",
        }
    ]
    if user.is_authenticated:
        mine = list(user_teams(user=user)[:10])
        panels.append(
            {
                "title": "My teams",
                "value": None,
                "rows": [
                    {"label": team.display_name, "url": reverse("catalog:team", args=[team.name])} for team in mine
                ],
            }
        )
    return panels


def search_backend_name() -> str:
    return "postgresql full-text + trigram" if connection.vendor == "postgresql" else "substring (SQLite)"


def is_postgres() -> bool:
    return bool(getattr(settings, "IS_POSTGRES", False))
