"""Query-string filters for the catalog API; each one is described so the OpenAPI schema documents it."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema_field

from catalog import selectors
from catalog.models import Agent, DataClass, Lifecycle, RiskTier, Team, Tool, ToolGrant
from portal.db import filter_json_list_contains

UNKNOWN = "unknown"
MAX_SEARCH_LENGTH = 200


def _search(queryset: QuerySet[Any], value: str, fields: tuple[str, ...]) -> QuerySet[Any]:
    """Teams: every word must appear (case-insensitive) in the name or title. (Agents and tools are searched by the
    catalog's search engine, `selectors.entity_search`.)"""
    for term in value.strip()[:MAX_SEARCH_LENGTH].split()[:8]:
        match = Q()
        for field in fields:
            match |= Q(**{f"{field}__icontains": term})
        queryset = queryset.filter(match)
    return queryset


def _with_tag(queryset: QuerySet[Any], tag: str) -> QuerySet[Any]:
    return filter_json_list_contains(queryset, "tags", tag)


def _owner_filter() -> django_filters.CharFilter:
    return django_filters.CharFilter(
        field_name="owner__name", lookup_expr="iexact", help_text="Name of the owning team, e.g. `platform-ai`."
    )


def _data_class_filter() -> django_filters.ChoiceFilter:
    return django_filters.ChoiceFilter(
        choices=DataClass.choices,
        null_label="unknown (counts as restricted)",
        null_value=UNKNOWN,
        help_text="Data class the entity handles; `unknown` finds those without one.",
    )


def _risk_tier_filter() -> django_filters.ChoiceFilter:
    return django_filters.ChoiceFilter(choices=RiskTier.choices, help_text="Risk tier from the rubric.")


class _Shared(dict[str, Any]):
    """Filters or form fields that hold no per-request state: every filter set and form uses this one copy."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self


class _CatalogFilterSet(django_filters.FilterSet):
    """Shares its filters and its form between requests. django-filter deep-copies every filter and builds a form
    class with a new field per filter on every request, and the form deep-copies those fields again: most of what
    filtering cost the API lists. Nothing changes them once built (the filter methods are plain functions, so no
    filter needs its per-request `parent`), so each class keeps one copy of each."""

    _form_classes: ClassVar[dict[type[django_filters.FilterSet], type[forms.Form]]] = {}

    @classmethod
    def get_filters(cls) -> dict[str, Any]:
        # Copied once per class: subclasses inherit the declared filter objects themselves.
        return _Shared(copy.deepcopy(super().get_filters()))

    def get_form_class(self) -> type[forms.Form]:
        form_class = self._form_classes.get(type(self))
        if form_class is None:
            form_class = super().get_form_class()
            form_class.base_fields = _Shared(form_class.base_fields)
            self._form_classes[type(self)] = form_class
        return form_class


def _search_entities(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    return selectors.entity_search(queryset, q=value[:MAX_SEARCH_LENGTH])


def search_order(filterset: django_filters.FilterSet) -> list[int] | None:
    """The order of the agents or tools a valid filter set lists: the search's (`selectors.entity_search_order`)
    when it searches (`q`), else None (the list's own)."""
    words = filterset.form.cleaned_data.get("q") or ""
    if not words:
        return None
    return selectors.entity_search_order(filterset.queryset.model, q=words[:MAX_SEARCH_LENGTH])


def _facets_named(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    """`facets` selects nothing: the view counts the listed facets over the filtered list (`requested_facets`)."""
    return queryset


def requested_facets(value: str) -> list[str]:
    """The facet names of a `facets` parameter (`tier` for `risk_tier`), in order, without repeats."""
    names = [selectors.FACET_ALIASES.get(part.strip(), part.strip()) for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(names))


def _facets_filter(kind: str) -> django_filters.CharFilter:
    allowed = selectors.FACETABLE[kind]

    def validate(value: str) -> None:
        unknown = [name for name in requested_facets(value) if name not in allowed]
        if unknown:
            raise forms.ValidationError(
                f"No facet {', '.join(map(repr, unknown))}; choose among {', '.join(allowed)} (or tier)."
            )

    return django_filters.CharFilter(
        method=_facets_named,
        validators=[validate],
        help_text=f"Comma-separated facets to count over the filtered list: {', '.join(allowed)} (`tier` is "
        "`risk_tier`). The answer gains `facets`: {name: [{value, count}]}.",
    )


def _search_teams(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    return _search(queryset, value, ("name", "title"))


def _filter_tag(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    return _with_tag(queryset, value)


class _TaggedSearchFilterSet(_CatalogFilterSet):
    q = django_filters.CharFilter(
        method=_search_entities,
        help_text="Search words (all must match, each as a word prefix; one typo or transposition is forgiven), "
        "best match first.",
    )
    tag = django_filters.CharFilter(method=_filter_tag, help_text="Only entities carrying this exact tag.")


class AgentFilter(_TaggedSearchFilterSet):
    facets = _facets_filter("agent")
    owner = _owner_filter()
    lifecycle = django_filters.ChoiceFilter(choices=Lifecycle.choices, help_text="Lifecycle stage.")
    status = django_filters.ChoiceFilter(choices=Agent.Status.choices, help_text="Onboarding status of the agent.")
    agent_type = django_filters.ChoiceFilter(choices=Agent.AgentType.choices, help_text="What the agent does.")
    # Published as a string: the levels 1-5 plus `unknown` (from the model field alone it would be an integer).
    autonomy_level = extend_schema_field(
        {
            "type": "string",
            "enum": [*(str(level) for level in Agent.Autonomy.values), UNKNOWN],
            "description": "Autonomy level 1 (assisted) to 5 (full autonomy); `unknown` finds agents without one.",
        }
    )(
        django_filters.ChoiceFilter(
            choices=[(str(value), label) for value, label in Agent.Autonomy.choices],
            null_label="unknown (counts as 5)",
            null_value=UNKNOWN,
        )
    )
    risk_tier = _risk_tier_filter()
    data_class = _data_class_filter()

    class Meta:
        model = Agent
        fields: list[str] = []


class ToolFilter(_TaggedSearchFilterSet):
    facets = _facets_filter("tool")
    owner = _owner_filter()
    kind = django_filters.ChoiceFilter(choices=Tool.Kind.choices, help_text="What kind of tool it is.")
    status = django_filters.ChoiceFilter(choices=Tool.Status.choices, help_text="Review status of the tool.")
    risk_tier = _risk_tier_filter()
    data_class = _data_class_filter()
    transport = django_filters.ChoiceFilter(choices=Tool.Transport.choices, help_text="How agents connect to it.")

    class Meta:
        model = Tool
        fields: list[str] = []


class GrantFilter(_CatalogFilterSet):
    agent = django_filters.CharFilter(field_name="agent__name", lookup_expr="iexact", help_text="Agent name.")
    tool = django_filters.CharFilter(field_name="tool__name", lookup_expr="iexact", help_text="Tool name.")
    environment = django_filters.CharFilter(help_text="Environment the grant is for, e.g. `production`.")
    status = django_filters.ChoiceFilter(choices=ToolGrant.Status.choices, help_text="Where the grant stands.")
    risk_tier = _risk_tier_filter()

    class Meta:
        model = ToolGrant
        fields: list[str] = []


class TeamFilter(_CatalogFilterSet):
    q = django_filters.CharFilter(method=_search_teams, help_text="Words to find in the team's name or title.")

    class Meta:
        model = Team
        fields: list[str] = []
