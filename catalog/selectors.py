"""Catalog reads. Every signed-in user reads the whole catalog; writes are checked in services.

The catalog page filters, facets, sorts and pages over `CatalogEntry`, one indexed row per agent and tool, so
its query count is constant and it never loads the whole catalog.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import connection
from django.db.models import BooleanField, Count, F, FloatField, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.urls import reverse

from catalog.models import Agent, AIModel, CatalogEntry, Location, Team, TeamMembership, Tool, ToolGrant
from catalog.risk import Tier
from catalog.search_cache import TTL_SECONDS, UNFILTERED_FACETS_KEY

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

    @property
    def has_next(self) -> bool:
        return self.page_number < self.num_pages

    @property
    def has_previous(self) -> bool:
        return self.page_number > 1


def _search_terms(q: str) -> list[str]:
    return [term for term in re.split(r"\s+", q.lower()) if term][:8]


TYPO_FALLBACK_BELOW = 5
RANK_AT_MOST = 2000


def _full_text(q: str) -> RawSQL:
    return RawSQL("search_vector @@ websearch_to_tsquery('simple', %s)", [q], output_field=BooleanField())


def _apply_search(entries: QuerySet[CatalogEntry], q: str) -> QuerySet[CatalogEntry]:
    if not q:
        return entries
    if connection.vendor == "postgresql":
        # search_vector is a stored generated tsvector (migration 0002): matching and ranking never re-parse
        # descriptions. Typo matching (trigram word similarity on names, tags and capability names) only
        # steps in when the words themselves find (almost) nothing, so common words stay cheap.
        matches = entries.annotate(text_match=_full_text(q)).filter(text_match=True)
        if matches.order_by()[:TYPO_FALLBACK_BELOW].count() < TYPO_FALLBACK_BELOW:
            typo_match = Q()
            for term in _search_terms(q):
                if len(term) >= 3:
                    typo_match |= Q(search_names__trigram_word_similar=term)
            matches = entries.annotate(text_match=_full_text(q)).filter(Q(text_match=True) | typo_match)
        rank = RawSQL("ts_rank(search_vector, websearch_to_tsquery('simple', %s))", [q], output_field=FloatField())
        return matches.annotate(rank=rank)
    for term in _search_terms(q):
        entries = entries.filter(search_text__contains=term)
    return entries


def _apply_filters(entries: QuerySet[CatalogEntry], query: CatalogQuery) -> QuerySet[CatalogEntry]:
    for name, chosen in query.filters.items():
        column = FACET_FIELDS.get(name, name)
        if name == "autonomy_level":
            levels = [int(v) for v in chosen if v.isdigit()]
            entries = entries.filter(autonomy_level__in=levels)
        else:
            entries = entries.filter(**{f"{column}__in": chosen})
    if query.tag:
        entries = (
            entries.filter(tags__contains=[query.tag])
            if connection.vendor == "postgresql"
            else entries.filter(tags__icontains=f'"{query.tag}"')
        )
    return entries


def _raw_facet_counts(base: QuerySet[CatalogEntry]) -> tuple[dict[str, list[tuple[Any, int]]], int]:
    """{facet: [(value, count), ...]} and the total, over the filtered rows.

    On PostgreSQL one GROUPING SETS query scans the matches once for every facet and the total; elsewhere one
    GROUP BY per facet plus a count."""
    columns = [FACET_FIELDS.get(name, name) for name, _ in FACETS]
    if connection.vendor != "postgresql":
        counts = {
            name: [(row[column], row["n"]) for row in base.values(column).annotate(n=Count("pk")).order_by("-n")]
            for (name, _), column in zip(FACETS, columns, strict=True)
        }
        return counts, base.count()
    inner_sql, params = base.order_by().values(*columns).query.sql_with_params()
    aliases = [f"c{i}" for i in range(len(columns))]
    sets = ", ".join(f"({alias})" for alias in aliases)
    # Only our own aliases and Django's compiled (parameterised) query are interpolated here.
    sql = (
        f"SELECT GROUPING({', '.join(aliases)}) AS g, {', '.join(aliases)}, COUNT(*) FROM "  # noqa: S608
        f"({inner_sql}) AS matches ({', '.join(aliases)}) GROUP BY GROUPING SETS ({sets}, ())"
    )
    counts: dict[str, list[tuple[Any, int]]] = {name: [] for name, _ in FACETS}
    total = 0
    width = len(aliases)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            grouping, values, n = row[0], row[1 : 1 + width], row[-1]
            if grouping == (1 << width) - 1:
                total = n
                continue
            # GROUPING sets a 1 bit for every column not grouped; the grouped one is the 0 bit.
            index = next(i for i in range(width) if not grouping & (1 << (width - 1 - i)))
            counts[FACETS[index][0]].append((values[index], n))
    for name in counts:
        counts[name].sort(key=lambda item: -item[1])
    return counts, total


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


def catalog_search(
    *, user: AbstractBaseUser | AnonymousUser, query: CatalogQuery, with_facets: bool = True
) -> CatalogPage:
    """Two queries on PostgreSQL whatever the catalog's size: facet counts with the total, then one page."""
    matches = _apply_filters(_apply_search(CatalogEntry.objects.all(), query.q), query)
    unranked = matches.order_by()
    if "rank" in unranked.query.annotations:
        unranked.query.annotations.pop("rank")
    if with_facets and not query.q and not query.filters and not query.tag:
        # The unfiltered catalog's counts scan every row: share them for a minute between visitors.
        cached = cache.get(UNFILTERED_FACETS_KEY)
        if cached is None:
            cached = _raw_facet_counts(unranked)
            cache.set(UNFILTERED_FACETS_KEY, cached, TTL_SECONDS)
        raw, total = cached
    elif with_facets:
        raw, total = _raw_facet_counts(unranked)
    else:
        raw, total = {}, unranked.count()
    ordering = SORTS[query.sort]
    if ordering is None and total > RANK_AT_MOST:
        # Ranking thousands of equally plausible matches costs more than it tells; name order instead.
        ordering = SORTS["name"]
    if ordering is None:
        ordered = (
            matches.order_by(F("rank").desc(nulls_last=True), "name")
            if connection.vendor == "postgresql"
            else matches.order_by("name")
        )
    else:
        ordered = matches.order_by(*ordering)
    num_pages = max(1, -(-total // query.page_size))
    page_number = min(query.page, num_pages)
    offset = (page_number - 1) * query.page_size
    # The long search columns are only for matching; never ship them to the page.
    page = ordered.select_related("owner").defer("search_text", "search_names")[offset : offset + query.page_size]
    return CatalogPage(
        query=query,
        entries=list(page),
        total=total,
        facets=_facet_counts(raw, query) if with_facets else [],
        page_number=page_number,
        num_pages=num_pages,
    )


# --- entities ----------------------------------------------------------------------------------------------


def agent_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Agent]:
    return Agent.objects.select_related("owner").prefetch_related("models_used", "calls").order_by("name")


def tool_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Tool]:
    return Tool.objects.select_related("owner").prefetch_related("capabilities").order_by("name")


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


def agent_detail(*, name: str) -> Agent:
    grants = ToolGrant.objects.select_related("tool", "tool__owner").order_by("tool__name", "environment")
    return (
        Agent.objects.select_related("owner")
        .prefetch_related("models_used", "calls", "called_by", Prefetch("grants", queryset=grants))
        .get(name=name.lower())
    )


def tool_detail(*, name: str) -> Tool:
    grants = ToolGrant.objects.select_related("agent", "agent__owner").order_by("agent__name", "environment")
    return (
        Tool.objects.select_related("owner")
        .prefetch_related("capabilities", Prefetch("grants", queryset=grants))
        .get(name=name.lower())
    )


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
    """The entity's own audit events and those of its grants, newest first."""
    from portal.models import AuditEvent

    condition = Q(object_type=f"catalog.{entity._meta.model_name}", object_id=str(entity.pk))
    if isinstance(entity, Agent | Tool):
        grant_ids = [
            str(pk)
            for pk in ToolGrant.objects.filter(**{entity._meta.model_name: entity}).values_list("pk", flat=True)[:500]
        ]
        if grant_ids:
            condition |= Q(object_type="catalog.toolgrant", object_id__in=grant_ids)
    return list(AuditEvent.objects.filter(condition).order_by("-sequence")[:limit])


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
