"""Catalog reads. Every signed-in user reads the whole catalog; writes are checked in services.

`catalog_search` is the catalog's one search (catalog page, API, MCP server); its index and statements are in
catalog.search. Everything else here is the ORM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db.models import Count, F, Prefetch, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.urls import reverse

from catalog import search
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
SORTS = tuple(search.ORDER)
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

        def text(value: Any) -> str:
            # NUL never reaches the database (PostgreSQL refuses it in text): it is no character anyone searches for.
            return str(value).replace("\x00", "")

        def values(name: str) -> list[str]:
            raw = params.getlist(name) if hasattr(params, "getlist") else params.get(name, [])
            raw = [raw] if isinstance(raw, str) else list(raw or [])
            return [text(v)[:100] for v in raw if text(v).strip()][:20]

        q = text(params.get("q") or "").strip()[:MAX_QUERY_LENGTH]
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
            q=q, filters=filters, tag=text(params.get("tag") or "")[:100], sort=sort, page=page, page_size=page_size
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
    # The misspelt search words that were also read as these catalog words, e.g. {"kubernets": ["kubernetes"]}.
    corrections: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        return self.page_number < self.num_pages

    @property
    def has_previous(self) -> bool:
        return self.page_number > 1


def catalog_search(
    *,
    user: AbstractBaseUser | AnonymousUser,
    query: CatalogQuery | str,
    filters: Mapping[str, Sequence[str]] | None = None,
    with_facets: bool = True,
) -> CatalogPage:
    """The catalog's one search, for the catalog page, the API and the MCP server: `query` is a CatalogQuery (or
    the search words, with `filters` {facet: [values]} beside them). Typos of one edit or transposition are
    forgiven and words match as prefixes (catalog.search). Facet counts with the total are shared between pages
    and visitors until the next catalog write (search_cache); then the page's ids and its entries: at most five
    queries whatever the catalog's size."""
    if isinstance(query, str):
        query = CatalogQuery.from_params(
            {"q": query, **{name: list(values) for name, values in (filters or {}).items()}}
        )
    key = counts_key({"q": query.q, "filters": query.filters, "tag": query.tag, "facets": with_facets})
    counted: search.Counted | None = cache.get(key)
    if counted is None:
        selection = search.Selection(plan=search.plan_search(query.q), filters=query.filters, tag=query.tag)
        counted = search.count(selection, with_facets=with_facets)
        cache.set(key, counted, TTL_SECONDS)
    selection = search.Selection(plan=counted.plan, filters=query.filters, tag=query.tag)
    num_pages = max(1, -(-counted.total // query.page_size))
    page_number = min(query.page, num_pages)
    ids = search.page_ids(
        selection,
        sort=query.sort,
        total=counted.total,
        offset=(page_number - 1) * query.page_size,
        limit=query.page_size,
    )
    # The long search columns are only for matching; never ship them to the page.
    by_id = CatalogEntry.objects.select_related("owner").defer("search_text", "search_names").in_bulk(ids)
    return CatalogPage(
        query=query,
        entries=[by_id[pk] for pk in ids if pk in by_id],
        total=counted.total,
        facets=_facet_counts(counted.facets, query) if with_facets else [],
        page_number=page_number,
        num_pages=num_pages,
        corrections=counted.plan.corrections,
    )


RANK_IN_LISTS_AT_MOST = 500


def entity_search(entities: QuerySet[Any], *, q: str) -> QuerySet[Any]:
    """`entities` (agents or tools) narrowed to those matching the search words `q`: the API's `q`, with the
    catalog page's terms, prefixes and typo corrections. Their order is the search's (`entity_search_order`). What
    the words match is shared between requests until the next catalog write, as the catalog page's counts are
    (search_cache)."""
    plan, ids = _entity_matches(q, entities.model)
    if plan.matches_nothing:
        return entities.none()
    if not plan:
        return entities
    return entities.filter(pk__in=RawSQL(*search.index().id_list(ids)))  # noqa: S611 - one array, not N values


def entity_search_order(model: type[Agent] | type[Tool], *, q: str) -> list[int] | None:
    """The ids of the agents or tools (`model`) matching the search words `q`, in the order a searched list shows
    them: best match first when at most RANK_IN_LISTS_AT_MOST match; more by name, as ranking each of thousands of
    plausible matches cost the API search several times its other work (bench.catalog, API search over gunicorn).
    None when `q` narrows nothing. Ranked once and shared with the matches until the next catalog write: ranking
    the matches again for every page was most of the database's work of an API search."""
    plan, ids = _entity_matches(q, model)
    return ids if plan and not plan.matches_nothing else None


def _entity_matches(q: str, model: type[Agent] | type[Tool]) -> tuple[search.SearchPlan, list[int]]:
    """The plan of the search words `q` and the ids of the agents or tools (`model`) it matches in the search's
    order (`entity_search_order`), from the cache while the catalog has not changed: the vocabulary, the index
    and the rank were three of the API search's seven queries."""
    kind = CatalogEntry.Kind.AGENT if model is Agent else CatalogEntry.Kind.TOOL
    key = counts_key({"entity_search": q, "kind": kind})
    cached: tuple[search.SearchPlan, list[int]] | None = cache.get(key)
    if cached is None:
        plan = search.plan_search(q)
        ids: list[int] = []
        if plan and not plan.matches_nothing:
            entries = CatalogEntry.objects.filter(kind=kind, id__in=RawSQL(*search.index().entry_ids(plan, kind)))  # noqa: S611 - full-text search
            # Every match, without a LIMIT: given the match as a subquery under a LIMIT, PostgreSQL walked the name
            # index testing every entity until it met a page of matches (190 ms for "github" among 80,000 tools).
            found = model.objects.filter(pk__in=entries.values("entity_id"))
            ids = list(found.order_by("name").values_list("pk", flat=True))
            if len(ids) <= RANK_IN_LISTS_AT_MOST:
                ranked = found.annotate(search_rank=search.EntityRank(plan, kind)).order_by("-search_rank", "name")
                ids = list(ranked.values_list("pk", flat=True))
        cached = (plan, ids)
        cache.set(key, cached, TTL_SECONDS)
    return cached


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
    """Every agent by name; the API list reads them as rows (`entity_list_rows`), with their owner and relations."""
    return Agent.objects.order_by("name")


def tool_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Tool]:
    """Every tool by name; the API list reads them as rows (`entity_list_rows`), with their owner and capabilities."""
    return Tool.objects.order_by("name")


def catalog_visibility(*, user: AbstractBaseUser | AnonymousUser) -> str:
    """Which part of the catalog `user` reads, for keys of answers shared between readers (search_cache): every
    signed-in user reads all of it (`agent_list`, `tool_list`), so they share one. A selector that comes to narrow
    by user must give each such part its own value here."""
    return "signed-in" if user.is_authenticated else "anonymous"


Row = dict[str, Any]


class EntityRows:
    """The filtered, ordered agents or tools of an API list, for its paginator: `count()` counts the entities and a
    slice reads that page as plain rows of `id` and `columns` (`.values()`), each with its to-many `relations` (a
    source name: the related columns to read, or none for the related rows' names). The agent and tool lists spent
    more CPU on model instances and their prefetched relations than on the rest of the request (bench.catalog: API
    list, API search); catalog.api.serializers.ListRows renders the rows as the serializers render instances.

    A searched list comes with its `order` (`entity_search_order`: the matching ids, best first): the ids that pass
    the list's other filters are read once (they are also its count), and a page reads only its own rows by id.
    Ordered in the database, every match was ranked and its whole row sorted to keep a page of them."""

    def __init__(
        self,
        entities: QuerySet[Any],
        *,
        columns: Sequence[str],
        relations: Mapping[str, Sequence[str]],
        order: Sequence[int] | None = None,
    ):
        self.entities = entities
        self.columns = columns
        self.relations = relations
        self.order = order
        self.ordered = entities.ordered or order is not None  # read by Paginator
        self._listed: list[int] | None = None

    def count(self) -> int:
        return self.entities.count() if self.order is None else len(self._listed_in_order())

    def _listed_in_order(self) -> list[int]:
        if self._listed is None:
            assert self.order is not None
            listed = set(self.entities.order_by().values_list("pk", flat=True))
            self._listed = [pk for pk in self.order if pk in listed]
        return self._listed

    def __getitem__(self, page: slice) -> list[Row]:
        if self.order is None:
            rows = list(self.entities.values("id", *self.columns)[page])
        else:
            ids = self._listed_in_order()[page]
            found = self.entities.model.objects.filter(pk__in=ids).values("id", *self.columns)
            by_pk = {row["id"]: row for row in found}
            rows = [by_pk[pk] for pk in ids if pk in by_pk]
        by_id = {row["id"]: row for row in rows}
        names = [source for source, columns in self.relations.items() if not columns]
        for row in rows:
            for source in self.relations:
                row[source] = []
        if not by_id:
            return rows
        if names:
            for entity_id, source, name in _related_names(self.entities.model, names, list(by_id)):
                by_id[entity_id][source].append(name)
        for source, columns in self.relations.items():
            if columns:
                relation = self.entities.model._meta.get_field(source)
                key = relation.field.attname  # the related model's foreign key to the entity
                related = relation.related_model.objects.filter(**{f"{key}__in": list(by_id)})
                for related_row in related.order_by("name").values(key, *columns):
                    by_id[related_row.pop(key)][source].append(related_row)
        return rows


def _related_names(model: type[Agent] | type[Tool], sources: Sequence[str], ids: list[int]) -> Any:
    """(entity id, source, related name) of the many-to-many relations `sources` of the entities `ids`, by name,
    in one query."""
    parts = []
    for source in sources:
        field = model._meta.get_field(source)
        through = field.remote_field.through  # type: ignore[union-attr]
        entity, target = field.m2m_field_name(), field.m2m_reverse_field_name()  # type: ignore[union-attr]
        parts.append(
            through.objects.filter(**{f"{entity}_id__in": ids})
            .annotate(entity=F(f"{entity}_id"), relation=Value(source), related=F(f"{target}__name"))
            .values_list("entity", "relation", "related")
        )
    return parts[0].union(*parts[1:], all=True).order_by("related")


def entity_list_rows(
    entities: QuerySet[Any],
    *,
    columns: Sequence[str],
    relations: Mapping[str, Sequence[str]],
    order: Sequence[int] | None = None,
) -> EntityRows:
    """`entities` (agents or tools, as `agent_list`/`tool_list` and the API's filters leave them) as plain rows, in
    their own order or, for a searched list, in the search's `order` (`entity_search_order`)."""
    return EntityRows(entities, columns=columns, relations=relations, order=order)


FACETABLE = {
    "agent": ("owner", "lifecycle", "status", "agent_type", "autonomy_level", "risk_tier", "data_class"),
    "tool": ("owner", "kind", "status", "lifecycle", "transport", "risk_tier", "data_class"),
}
FACET_ALIASES = {"tier": "risk_tier", "type": "agent_type"}


def entity_facet_counts(entities: QuerySet[Any], *, facets: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """{facet: [{"value", "count"}, ...]} over `entities` (the API's filtered agents or tools), commonest first, one
    GROUP BY each; shared between requests until the next catalog write, as the catalog page's counts are."""
    key = counts_key({"model": entities.model._meta.label, "sql": str(entities.query), "facets": list(facets)})
    counted: dict[str, list[dict[str, Any]]] | None = cache.get(key)
    if counted is None:
        counted = {}
        listed = entities.model.objects.filter(pk__in=entities.order_by().values("pk"))
        for name in facets:
            column = "owner__name" if name == "owner" else name
            rows = listed.values_list(column).annotate(n=Count("pk")).order_by("-n", column)
            counted[name] = [{"value": value, "count": n} for value, n in rows]
        cache.set(key, counted, TTL_SECONDS)
    return counted


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


# A grant row of an entity page shows the grant, the other end's name and title and its owner's: the rest of their
# columns stay in the database. Naming the columns read with `only` (the grant's and five of the ends') cost about
# 500 fewer Python calls in composing the grants' query of every entity page than deferring the ~40 others
# (bench.catalog, entity page).
_SHOWN_OF_END = ("name", "title", "owner")
_SHOWN_OF_OWNER = ("name", "title")


def _page_grants(end: str) -> Prefetch:
    shown = [field.name for field in ToolGrant._meta.concrete_fields]
    shown += [f"{end}__{name}" for name in _SHOWN_OF_END] + [f"{end}__owner__{name}" for name in _SHOWN_OF_OWNER]
    grants = ToolGrant.objects.select_related(end, f"{end}__owner").only(*shown).order_by(f"{end}__name", "environment")
    return Prefetch("grants", queryset=grants)


def agent_detail(*, name: str) -> Agent:
    return (
        Agent.objects.select_related("owner")
        .prefetch_related("models_used", "calls", "called_by", _agent_grants())
        .get(name=name.lower())
    )


def tool_detail(*, name: str) -> Tool:
    return Tool.objects.select_related("owner").prefetch_related("capabilities", _tool_grants()).get(name=name.lower())


def agent_page_detail(*, name: str, user: AbstractBaseUser | AnonymousUser) -> Agent:
    """The agent for its page, with its owner and grants (each with its tool's and the tool's owner's names). Its
    models and the agents it calls and is called by are `agent_relations`'s one query."""
    return Agent.objects.select_related("owner").prefetch_related(_page_grants("tool")).get(name=name.lower())


def tool_page_detail(*, name: str, user: AbstractBaseUser | AnonymousUser) -> Tool:
    """The tool for its page, with its owner, capabilities and grants (each with its agent's and the agent's owner's
    names). The definition (can be a whole OpenAPI document) is not shown there."""
    return (
        Tool.objects.select_related("owner")
        .defer("definition")
        .prefetch_related(Prefetch("capabilities", queryset=Capability.objects.order_by("name")), _page_grants("agent"))
        .get(name=name.lower())
    )


@dataclass
class AgentRelations:
    models: list[dict[str, str]]
    calls: list[str]
    called_by: list[str]


def agent_relations(*, agent: Agent) -> AgentRelations:
    """The models an agent uses (name, title, provider) and the names of the agents it calls and is called by, by
    name, in one query: a query each cost the entity page about a millisecond of CPU (bench.catalog, entity page)."""
    blank = Value("")
    uses = Agent.models_used.through.objects.filter(agent_id=agent.pk).annotate(
        link=Value("models"), name=F("aimodel__name"), title=F("aimodel__title"), provider=F("aimodel__provider")
    )
    calls = Agent.calls.through.objects.filter(from_agent_id=agent.pk).annotate(
        link=Value("calls"), name=F("to_agent__name"), title=blank, provider=blank
    )
    called_by = Agent.calls.through.objects.filter(to_agent_id=agent.pk).annotate(
        link=Value("called_by"), name=F("from_agent__name"), title=blank, provider=blank
    )
    columns = ("link", "name", "title", "provider")
    found: dict[str, list[Any]] = {"models": [], "calls": [], "called_by": []}
    linked = uses.values_list(*columns).union(calls.values_list(*columns), called_by.values_list(*columns), all=True)
    for link, name, title, provider in linked.order_by("name"):
        found[link].append({"name": name, "title": title, "provider": provider} if link == "models" else name)
    return AgentRelations(models=found["models"], calls=found["calls"], called_by=found["called_by"])


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
    memberships = TeamMembership.objects.filter(user_id=user.pk)
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
    return search.index().name
