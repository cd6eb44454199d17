"""Catalog API: parse input, call one service or selector, render. Rules live in `catalog.services`; its
exceptions become 400 (CatalogError), 403 (CatalogPermissionError) and 409 (CatalogConflict) in
`portal.api.errors`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from catalog import locations, search_cache, selectors, services
from catalog.api import serializers as s
from catalog.api.filters import AgentFilter, GrantFilter, TeamFilter, ToolFilter, requested_facets, search_order
from catalog.exporting import catalog_export_backstage
from catalog.formats.parallel import in_this_process
from catalog.import_runs import import_run_queue, import_run_visible, import_runs_inline
from catalog.importing import import_inputs
from catalog.models import Agent, AIModel, ImportRun, Location, Team, Tool, ToolGrant
from catalog.teams import team_create
from portal.api.errors import error_body
from portal.api.pagination import PortalPagination
from portal.roles import user_is_platform_admin

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Invalid input; `fields` names each bad field."),
    403: OpenApiResponse(s.ErrorSerializer, description="Not allowed (not a maintainer, or token scope)."),
    404: OpenApiResponse(s.ErrorSerializer, description="No such object."),
}
WRITE_ERRORS = {code: ERRORS[code] for code in (400, 403)}
DETAIL_WRITE_ERRORS = {**WRITE_ERRORS, 404: ERRORS[404]}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The request is too large."


class PlatformAdminWrites(permissions.BasePermission):
    """Teams and models are shared vocabulary: everyone reads them, platform admins change them."""

    message = "Only platform admins can change teams and models (with an API token: one with the admin scope)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in permissions.SAFE_METHODS or user_is_platform_admin(request.user)


def _not_found(kind: str, key: object) -> exceptions.NotFound:
    return exceptions.NotFound(f"No {kind} {key!r}.")


class _ShortFirstPagePaginator(Paginator):
    """Counts a first page that is not full by its rows, which are all there are, instead of with a COUNT query. Most
    filtered lists fit in one page, and counting them cost as much CPU as reading them."""

    def page(self, number: Any) -> Page:
        if str(number) != "1" or self.orphans or not self.allow_empty_first_page:
            return super().page(number)
        rows = self.object_list[: self.per_page]
        if len(rows) < self.per_page:
            self.count = len(rows)
        return self._get_page(rows, 1, self)


class EntityListPagination(PortalPagination):
    django_paginator_class = _ShortFirstPagePaginator


def _entity_list(view: viewsets.GenericViewSet, request: Request) -> Response:
    """A page of the filtered agents or tools and, when `facets` names some, their counts over the whole list. A
    search's page (`q`) is shared between readers of the same catalog for a few seconds (`_shared_search`)."""
    if request.query_params.get("q"):
        return Response(_shared_search(request, lambda: _entity_page(view, request).data))
    return _entity_page(view, request)


def _shared_search(request: Request, compute: Callable[[], Any]) -> Any:
    """The answer of an API search, kept until the next catalog write or CATALOG_SEARCH_RESULTS_SECONDS (see
    catalog.search_cache): the key is the whole URL (so its paging links too) and what the reader may see."""
    visibility = selectors.catalog_visibility(user=request.user)
    return search_cache.shared_results({"url": request.build_absolute_uri(), "visibility": visibility}, compute)


def _entity_page(view: viewsets.GenericViewSet, request: Request) -> Response:
    # The filter backend's steps (DjangoFilterBackend.filter_queryset), keeping the filter set for the search order.
    filterset = DjangoFilterBackend().get_filterset(request, view.get_queryset(), view)
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    entities = filterset.qs
    rows = s.AGENT_ROWS if entities.model is Agent else s.TOOL_ROWS
    listed = selectors.entity_list_rows(
        entities, columns=rows.columns, relations=rows.relations, order=search_order(filterset)
    )
    page = view.paginate_queryset(listed)
    response = view.get_paginated_response(rows.render(page or []))
    facets = requested_facets(request.query_params.get("facets", ""))
    if facets:
        response.data["facets"] = selectors.entity_facet_counts(entities, facets=facets)
    return response


# --- agents -------------------------------------------------------------------------------------------------

HELD_AUTONOMY = (
    "Raising `autonomy_level` to 4 or 5 is not written: it files an approval request (with the runtime evidence "
    "check) and the answer is 202 with the agent as it stays, `pending` naming the request, and `Location` its URL; "
    "approving the request writes the level. The rest of the change is written. While such a request is open, asking "
    "for another level is 409 (the same level answers the open request again)."
)
PENDING_LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    location=OpenApiParameter.HEADER,
    response=[202],
    description="The approval request that holds the pending change (GET it under /api/v1/approvals/requests/).",
)
AGENT_UPDATE_RESPONSES = {
    200: OpenApiResponse(s.AgentUpdatedSerializer, description="Written; `pending` is empty."),
    202: OpenApiResponse(
        s.AgentUpdatedSerializer, description="Written except what `pending` lists, which waits for approval."
    ),
    **DETAIL_WRITE_ERRORS,
    409: OpenApiResponse(s.ErrorSerializer, description="Another autonomy level is already waiting for approval."),
}


@extend_schema_view(
    list=extend_schema(summary="List agents", description="Filter, search (`q`) and page through agents."),
    retrieve=extend_schema(summary="One agent, with its grants", responses={200: s.AgentDetailSerializer, **ERRORS}),
    create=extend_schema(
        summary="Add an agent",
        description="You must maintain the owner team (or be a platform admin). Risk is scored on the way in.",
        request=s.AgentWriteSerializer,
        responses={201: s.AgentDetailSerializer, **WRITE_ERRORS},
    ),
    update=extend_schema(
        summary="Replace an agent's facts",
        description="Keys left out go back to their defaults; unknown risk facts count as their worst value. "
        + HELD_AUTONOMY,
        request=s.AgentWriteSerializer,
        responses=AGENT_UPDATE_RESPONSES,
        parameters=[PENDING_LOCATION],
    ),
    partial_update=extend_schema(
        summary="Change some of an agent's facts",
        description=HELD_AUTONOMY,
        request=s.AgentWriteSerializer,
        responses=AGENT_UPDATE_RESPONSES,
        parameters=[PENDING_LOCATION],
    ),
    destroy=extend_schema(summary="Delete an agent", responses={204: None, **DETAIL_WRITE_ERRORS}),
)
class AgentViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.AgentSerializer
    filterset_class = AgentFilter
    pagination_class = EntityListPagination
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Agent]:
        return selectors.agent_list(user=self.request.user)

    def list(self, request: Request) -> Response:
        return _entity_list(self, request)

    def _detail(self, name: str) -> Agent:
        try:
            return selectors.agent_detail(name=name)
        except Agent.DoesNotExist:
            raise _not_found("agent", name) from None

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(s.AgentDetailSerializer(self._detail(name)).data)

    def create(self, request: Request) -> Response:
        payload = s.AgentWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        agent = services.agent_create(actor=request.user, data=payload.validated_data)
        return Response(s.AgentDetailSerializer(self._detail(agent.name)).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, name: str, partial: bool = False) -> Response:
        agent = self._detail(name)
        payload = s.AgentWriteSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        agent = services.agent_update(actor=request.user, agent=agent, data=payload.validated_data)
        held = agent.held_changes
        body = s.AgentUpdatedSerializer(self._detail(agent.name), context={"held": held}).data
        filed = [change for change in held if change.request_api_url]
        if not held:
            return Response(body)
        headers = {"Location": request.build_absolute_uri(filed[0].request_api_url)} if filed else {}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)

    def partial_update(self, request: Request, name: str) -> Response:
        return self.update(request, name, partial=True)

    def destroy(self, request: Request, name: str) -> Response:
        services.agent_delete(actor=request.user, agent=self._detail(name))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tools --------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List tools", description="Filter, search (`q`) and page through tools."),
    retrieve=extend_schema(summary="One tool, with its grants", responses={200: s.ToolDetailSerializer, **ERRORS}),
    create=extend_schema(
        summary="Add a tool",
        description="You must maintain the owner team (or be a platform admin). Risk is scored on the way in.",
        request=s.ToolWriteSerializer,
        responses={201: s.ToolDetailSerializer, **WRITE_ERRORS},
    ),
    update=extend_schema(
        summary="Replace a tool's facts",
        description="Keys left out go back to their defaults. A changed capability list voids an attestation.",
        request=s.ToolWriteSerializer,
        responses={200: s.ToolDetailSerializer, **DETAIL_WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change some of a tool's facts",
        request=s.ToolWriteSerializer,
        responses={200: s.ToolDetailSerializer, **DETAIL_WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a tool",
        description="Refused with 409 while the tool has requested or approved grants.",
        responses={
            204: None,
            **DETAIL_WRITE_ERRORS,
            409: OpenApiResponse(s.ErrorSerializer, description="The tool still has open or active grants."),
        },
    ),
)
class ToolViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ToolSerializer
    filterset_class = ToolFilter
    pagination_class = EntityListPagination
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Tool]:
        return selectors.tool_list(user=self.request.user)

    def list(self, request: Request) -> Response:
        return _entity_list(self, request)

    def _detail(self, name: str) -> Tool:
        try:
            return selectors.tool_detail(name=name)
        except Tool.DoesNotExist:
            raise _not_found("tool", name) from None

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(s.ToolDetailSerializer(self._detail(name)).data)

    def create(self, request: Request) -> Response:
        payload = s.ToolWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        tool = services.tool_create(actor=request.user, data=payload.validated_data)
        return Response(s.ToolDetailSerializer(self._detail(tool.name)).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, name: str, partial: bool = False) -> Response:
        tool = self._detail(name)
        payload = s.ToolWriteSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        tool = services.tool_update(actor=request.user, tool=tool, data=payload.validated_data)
        return Response(s.ToolDetailSerializer(self._detail(tool.name)).data)

    def partial_update(self, request: Request, name: str) -> Response:
        return self.update(request, name, partial=True)

    def destroy(self, request: Request, name: str) -> Response:
        services.tool_delete(actor=request.user, tool=self._detail(name))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- models -------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List AI models"),
    retrieve=extend_schema(summary="One AI model", responses={200: s.AIModelSerializer, **ERRORS}),
    create=extend_schema(
        summary="Register an AI model (platform admins)",
        description="Creates the model, or updates the keys given when the name exists (201 created, 200 updated).",
        request=s.AIModelSerializer,
        responses={201: s.AIModelSerializer, 200: s.AIModelSerializer, **WRITE_ERRORS},
    ),
    update=extend_schema(
        summary="Replace an AI model's facts (platform admins)",
        request=s.AIModelReplaceSerializer,
        responses={200: s.AIModelSerializer, **DETAIL_WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change some of an AI model's facts (platform admins)",
        request=s.AIModelReplaceSerializer,
        responses={200: s.AIModelSerializer, **DETAIL_WRITE_ERRORS},
    ),
)
class AIModelViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.AIModelSerializer
    permission_classes = [*APIView.permission_classes, PlatformAdminWrites]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[AIModel]:
        return selectors.model_list(user=self.request.user)

    def _get(self, name: str) -> AIModel:
        model = self.get_queryset().filter(name=name.lower()).first()
        if model is None:
            raise _not_found("model", name)
        return model

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(s.AIModelSerializer(self._get(name)).data)

    def create(self, request: Request) -> Response:
        payload = s.AIModelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        model, created = services.model_upsert(data=payload.validated_data, actor=request.user)
        return Response(
            s.AIModelSerializer(model).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def update(self, request: Request, name: str, partial: bool = False) -> Response:
        model = self._get(name)
        payload = s.AIModelReplaceSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        model, _ = services.model_upsert(data={**payload.validated_data, "name": model.name}, actor=request.user)
        return Response(s.AIModelSerializer(model).data)

    def partial_update(self, request: Request, name: str) -> Response:
        return self.update(request, name, partial=True)


# --- teams --------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List teams"),
    retrieve=extend_schema(summary="One team, with its members", responses={200: s.TeamDetailSerializer, **ERRORS}),
    create=extend_schema(
        summary="Create a team (platform admins)",
        request=s.TeamSerializer,
        responses={201: s.TeamDetailSerializer, **WRITE_ERRORS},
    ),
)
class TeamViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.TeamSerializer
    filterset_class = TeamFilter
    permission_classes = [*APIView.permission_classes, PlatformAdminWrites]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Team]:
        return selectors.team_list(user=self.request.user).select_related("parent")

    def _detail(self, name: str) -> Team:
        try:
            return selectors.team_detail(name=name)
        except Team.DoesNotExist:
            raise _not_found("team", name) from None

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(s.TeamDetailSerializer(self._detail(name)).data)

    def create(self, request: Request) -> Response:
        payload = s.TeamSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        team = team_create(actor=request.user, **payload.validated_data)
        return Response(s.TeamDetailSerializer(self._detail(team.name)).data, status=status.HTTP_201_CREATED)


# --- grants -------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List tool grants"),
    retrieve=extend_schema(summary="One tool grant", responses={200: s.GrantSerializer, **ERRORS}),
    create=extend_schema(
        summary="Request a tool grant for an agent",
        description=(
            "Asks for the agent to use the tool in one environment; approvals decide. Idempotent: an open or "
            "approved grant for the same agent, tool and environment is returned as is (200)."
        ),
        request=s.GrantRequestSerializer,
        responses={201: s.GrantSerializer, 200: s.GrantSerializer, **WRITE_ERRORS},
    ),
)
class GrantViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.GrantSerializer
    filterset_class = GrantFilter

    def get_queryset(self) -> QuerySet[ToolGrant]:
        return (
            selectors.grant_list(user=self.request.user)
            .select_related("requested_by")
            .prefetch_related("tool__capabilities")
        )

    def retrieve(self, request: Request, pk: str) -> Response:
        grant = self.get_queryset().filter(pk=pk).first() if pk.isdigit() else None
        if grant is None:
            raise _not_found("grant", pk)
        return Response(s.GrantSerializer(grant).data)

    def create(self, request: Request) -> Response:
        payload = s.GrantRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        agent = payload.validated_data["agent"]
        # grant_request itself does not check who asks; only the agent's maintainers may.
        if not services.can_edit(request.user, agent):
            raise services.CatalogPermissionError(
                f"Only maintainers of team {agent.owner.name!r} or platform admins can request grants for it."
            )
        grant, created = services.grant_request(actor=request.user, **payload.validated_data)
        grant = self.get_queryset().get(pk=grant.pk)
        return Response(
            s.GrantSerializer(grant).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


# --- search -----------------------------------------------------------------------------------------------


class SearchEntrySerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="`agent` or `tool`.")
    name = serializers.CharField(help_text="Its name; `/api/v1/{kind}s/{name}/` has the rest.")
    title = serializers.CharField(help_text="Display name.")
    summary = serializers.CharField(help_text="First words of its description.")
    owner = serializers.CharField(source="owner.name", help_text="Name of the owning team.")
    risk_tier = serializers.CharField(help_text="Risk tier from the rubric.")
    lifecycle = serializers.CharField(help_text="Lifecycle stage.")
    status = serializers.CharField(help_text="Onboarding (agents) or review (tools) status.")


class SearchFacetValueSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField()


class CatalogSearchSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Entries matching in all.")
    page = serializers.IntegerField()
    num_pages = serializers.IntegerField()
    results = SearchEntrySerializer(many=True)
    facets = serializers.DictField(
        child=SearchFacetValueSerializer(many=True), help_text="{facet: [{value, label, count}]} over all matches."
    )
    corrections = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Misspelt search words and the catalog words they were also read as.",
    )


SEARCH_PARAMETERS = [
    OpenApiParameter("q", OpenApiTypes.STR, description="Search words (prefixes; one typo forgiven)."),
    OpenApiParameter("tag", OpenApiTypes.STR, description="Only entries carrying this exact tag."),
    OpenApiParameter("sort", OpenApiTypes.STR, enum=list(selectors.SORTS), description="Order; best match first."),
    OpenApiParameter("page", OpenApiTypes.INT),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 100; 25 by default."),
    *(
        OpenApiParameter(name, OpenApiTypes.STR, many=True, description=f"{label} (repeat for several).")
        for name, label in selectors.FACETS
    ),
]


class CatalogSearchView(APIView):
    """Agents and tools together, through the catalog page's search engine."""

    @extend_schema(
        summary="Search agents and tools",
        description="The catalog page's search: ranked full-text, word prefixes, one typo or transposition "
        "forgiven; facet counts over all matches.",
        parameters=SEARCH_PARAMETERS,
        responses={200: CatalogSearchSerializer, 400: ERRORS[400]},
    )
    def get(self, request: Request) -> Response:
        return Response(_shared_search(request, lambda: self._answer(request)))

    def _answer(self, request: Request) -> dict[str, Any]:
        page = selectors.catalog_search(user=request.user, query=selectors.CatalogQuery.from_params(request.GET))
        return {
            "count": page.total,
            "page": page.page_number,
            "num_pages": page.num_pages,
            "results": SearchEntrySerializer(page.entries, many=True).data,
            "facets": {
                name: [{"value": v.value, "label": v.label, "count": v.count} for v in values]
                for name, _, values in page.facets
            },
            "corrections": page.corrections,
        }


# --- locations ----------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List locations"),
    retrieve=extend_schema(summary="One location", responses={200: s.LocationSerializer, **ERRORS}),
    create=extend_schema(
        summary="Register a location",
        description="Validates the target (https, no private addresses) and queues the first sync.",
        request=s.LocationCreateSerializer,
        responses={201: s.LocationSerializer, **WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Remove a location",
        description="Entities it imported stay in the catalog.",
        responses={204: None, **DETAIL_WRITE_ERRORS},
    ),
    sync=extend_schema(
        summary="Sync a location now",
        request=None,
        responses={202: s.LocationSerializer, **DETAIL_WRITE_ERRORS},
    ),
)
class LocationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.LocationSerializer

    def get_queryset(self) -> QuerySet[Location]:
        return selectors.location_list(user=self.request.user)

    def _get(self, pk: str) -> Location:
        location = self.get_queryset().filter(pk=pk).first() if pk.isdigit() else None
        if location is None:
            raise _not_found("location", pk)
        return location

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.LocationSerializer(self._get(pk)).data)

    def create(self, request: Request) -> Response:
        payload = s.LocationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        location = locations.location_create(actor=request.user, **payload.validated_data)
        return Response(s.LocationSerializer(self._get(str(location.pk))).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        locations.location_delete(actor=request.user, location=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str) -> Response:
        location = self._get(pk)
        locations.location_request_sync(actor=request.user, location=location)
        return Response(s.LocationSerializer(location).data, status=status.HTTP_202_ACCEPTED)


# --- import and export --------------------------------------------------------------------------------------


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is {size:,} bytes; at most {limit:,} bytes ({limit / 1024 / 1024:g} MB) are accepted. "
        "Split the catalog into several files or requests."
    )


def _content_length(request: Request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class ImportView(APIView):
    """Import descriptors: Backstage catalog-info.yaml, MCP registry server.json, A2A agent cards."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        summary="Import descriptors",
        description=(
            "Send files as `multipart/form-data` (`files`, repeated) or JSON `{content, filename}`. The format is "
            "detected from the content. Every document is validated first; each is written in its own transaction, "
            "so a bad document never leaves part of itself behind. Re-importing unchanged descriptors writes "
            "nothing (`unchanged`). 200 with the report when nothing failed; 400 with the report in "
            "`error.fields.report` when any document or entity failed (the others were still imported unless "
            "`dry_run`); 413 when the request is larger than the upload limit (10 MB by default). "
            "An import of more than IMPORT_INLINE_MAX_BYTES (512 KB by default) runs in a worker: 202 with the run "
            "and its address in `Location`; follow it with GET /api/v1/imports/{id}/ (conflicts are then reported "
            "per document in the run's report rather than as a 409)."
        ),
        request={"application/json": s.ImportJsonSerializer, "multipart/form-data": s.ImportUploadSerializer},
        parameters=[
            OpenApiParameter(
                "dry_run", OpenApiTypes.BOOL, description="Validate and report without writing (also in the body)."
            ),
            OpenApiParameter(
                "owner", OpenApiTypes.STR, description="Team for descriptors that name no owner (also in the body)."
            ),
        ],
        responses={
            200: s.ImportReportSerializer,
            202: OpenApiResponse(s.ImportRunSerializer, description="Queued for a worker (a large import)."),
            400: OpenApiResponse(
                s.IMPORT_ERROR_SCHEMA, description="Some documents failed (see the report), or the request was bad."
            ),
            403: ERRORS[403],
            413: OpenApiResponse(s.ErrorSerializer, description="The upload is larger than the limit."),
        },
    )
    def post(self, request: Request) -> Response:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if _content_length(request) > limit:
            raise _too_large(_content_length(request), limit)
        if request.content_type.startswith("multipart/"):
            inputs = self._uploaded_files(request, limit)
        else:
            inputs = self._json_content(request, limit)
        options = s.ImportJsonSerializer(data=self._options(request), partial=True)
        options.is_valid(raise_exception=True)
        chosen = {
            "actor": request.user,
            "default_owner": options.validated_data.get("owner") or None,
            "dry_run": options.validated_data.get("dry_run", False),
            "adopt": options.validated_data.get("adopt", False),
        }
        if not import_runs_inline(inputs):
            run = import_run_queue(inputs=inputs, **chosen)
            location = reverse("catalog-api:import-run", args=[run.pk], request=request)
            return Response(
                s.ImportRunSerializer(run).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
            )
        with in_this_process():
            # SourceConflict: 409 naming each entity and the source that owns it
            report = import_inputs(inputs, **chosen, refuse_conflicts=True)
        if report.ok:
            return Response(report.as_dict())
        message = f"{report.failed} document(s) or entities failed; see fields.report.errors. " + (
            "Nothing was written (dry run)." if report.dry_run else "Those without errors were imported."
        )
        return Response(
            error_body(status.HTTP_400_BAD_REQUEST, "invalid", message, {"report": report.as_dict()}),
            status=status.HTTP_400_BAD_REQUEST,
        )

    @staticmethod
    def _options(request: Request) -> dict[str, Any]:
        """dry_run and owner from the body, else from the query string."""
        body = request.data if hasattr(request.data, "get") else {}
        options: dict[str, Any] = {}
        for key in ("dry_run", "owner", "adopt"):
            if key in body:
                options[key] = body.get(key)
            elif key in request.query_params:
                options[key] = request.query_params[key]
        return options

    @staticmethod
    def _uploaded_files(request: Request, limit: int) -> list[tuple[str, bytes]]:
        files = request.FILES.getlist("files")
        if not files:
            raise exceptions.ValidationError({"files": ["Attach one or more descriptor files as `files`."]})
        total = sum(upload.size or 0 for upload in files)
        if total > limit:
            raise _too_large(total, limit)
        return [(upload.name or "upload", upload.read()) for upload in files]

    @staticmethod
    def _json_content(request: Request, limit: int) -> list[tuple[str, bytes]]:
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError(
                {"content": ["Send a JSON object {content, filename} or upload files as multipart/form-data."]}
            )
        payload = s.ImportJsonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        content = payload.validated_data["content"].encode()
        if len(content) > limit:
            raise _too_large(len(content), limit)
        return [(payload.validated_data["filename"], content)]


class YamlRenderer(renderers.BaseRenderer):
    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, str):
            return data.encode()
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


class TextYamlRenderer(YamlRenderer):
    media_type = "text/yaml"


# Not one YAML value but a stream of documents, one Backstage entity each; read it with a multi-document loader
# (yaml.safe_load_all). OpenAPI has no word for a stream, so the schema describes it as the list of its documents.
BACKSTAGE_STREAM = {
    "type": "array",
    "description": "A multi-document YAML stream; each document is one Backstage entity (Group, User, Resource, API, "
    "Component), in this order.",
    "items": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object"},
        },
    },
}


class BackstageExportView(APIView):
    # JSON first, so errors keep the JSON shape for clients that accept anything.
    renderer_classes = [renderers.JSONRenderer, YamlRenderer, TextYamlRenderer]

    @extend_schema(
        summary="Export the catalog as Backstage YAML",
        description=(
            "Every team, user, model, tool and agent as a multi-document catalog-info.yaml that stock Backstage "
            "ingests and this API imports back unchanged."
        ),
        responses={
            (200, "application/yaml"): OpenApiResponse(
                BACKSTAGE_STREAM,
                description="catalog-info.yaml: a multi-document YAML stream (`---` between documents)",
            ),
            (200, "text/yaml"): OpenApiResponse(
                BACKSTAGE_STREAM, description="The same stream, for clients that ask so."
            ),
            403: ERRORS[403],
        },
        extensions={"x-yaml-stream": "multi-document"},
    )
    def get(self, request: Request) -> HttpResponse:
        renderer = request.accepted_renderer
        media_type = renderer.media_type if isinstance(renderer, YamlRenderer) else YamlRenderer.media_type
        response = HttpResponse(catalog_export_backstage(), content_type=f"{media_type}; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="catalog-info.yaml"'
        return response


class ImportRunView(APIView):
    @extend_schema(
        summary="An import run",
        description="A large import queued by POST /api/v1/import/: its phase, then its report. Its author and "
        "platform admins see it.",
        responses={200: s.ImportRunSerializer, 404: ERRORS[404]},
    )
    def get(self, request: Request, pk: int) -> Response:
        run = ImportRun.objects.filter(pk=pk).first()
        if run is None or not import_run_visible(run, request.user):
            raise exceptions.NotFound("No such import run.")
        return Response(s.ImportRunSerializer(run).data)
