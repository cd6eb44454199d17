"""Unknown query parameters on a list are an error (400 naming them), not silently ignored: `?serach=x` returning
everything looks like an answer.

A list's parameters are what it declares: its filter set's filters (django-filter), its pagination's parameters,
the search and ordering parameters of its filter backends, and the fields of its `query_serializer_class` (a
serializer that validates and documents the query string). Nothing here names a parameter of any one list."""

from __future__ import annotations

import functools
from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.settings import api_settings

# Query parameters DRF itself reads on any view.
FRAMEWORK_PARAMETERS = frozenset(filter(None, [api_settings.URL_FORMAT_OVERRIDE]))
PAGINATION_PARAMETERS = (
    "page_query_param",
    "page_size_query_param",
    "cursor_query_param",
    "limit_query_param",
    "offset_query_param",
)
BACKEND_PARAMETERS = ("search_param", "ordering_param")


def _filter_names(filterset_class: Any) -> set[str]:
    names: set[str] = set()
    for name, declared in filterset_class.base_filters.items():
        names.add(name)
        # Range and similar filters read several parameters: name_min, name_max, name_after ...
        names.update(f"{name}_{suffix}" for suffix in getattr(declared.field.widget, "suffixes", ()) if suffix)
    return names


@functools.cache
def _declared(
    view_class: type, filterset_class: Any, pagination_class: Any, backends: tuple[type, ...]
) -> frozenset[str]:
    names = set(FRAMEWORK_PARAMETERS)
    if filterset_class is not None:
        names |= _filter_names(filterset_class)
    for source in (pagination_class, *backends):
        for attribute in (*PAGINATION_PARAMETERS, *BACKEND_PARAMETERS):
            value = getattr(source, attribute, None)
            if isinstance(value, str) and value:
                names.add(value)
    query_serializer_class = getattr(view_class, "query_serializer_class", None)
    if query_serializer_class is not None:
        names |= set(query_serializer_class().fields)
    return frozenset(names)


def declared_query_parameters(view: Any) -> frozenset[str]:
    return _declared(
        type(view),
        getattr(view, "filterset_class", None),
        getattr(view, "pagination_class", None),
        tuple(getattr(view, "filter_backends", ())),
    )


def _is_list(view: Any) -> bool:
    action = getattr(view, "action", None)
    if action is not None:  # a viewset: its list action
        return bool(action == "list")
    return getattr(view, "query_serializer_class", None) is not None  # an APIView that declares its parameters


class KnownQueryParameters(permissions.BasePermission):
    """Runs with the permissions (after authentication, so a stranger learns nothing from a 400): a list request
    with a query parameter the list does not declare is refused with a 400 naming it and what is accepted."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method not in permissions.SAFE_METHODS or not _is_list(view):
            return True
        known = declared_query_parameters(view)
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            accepted = ", ".join(sorted(known)) or "none"
            raise exceptions.ValidationError(
                {name: [f"is not a parameter of this list; accepted: {accepted}."] for name in unknown}
            )
        return True
