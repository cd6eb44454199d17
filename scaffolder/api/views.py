"""Scaffolder API: templates (list, retrieve, preview) and runs (start, read, retry). Thin: parse, call one
service or selector, render. Token scopes: reads and previews need `read`; starting and retrying runs `write`."""

from __future__ import annotations

import base64
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.api.serializers import ErrorSerializer
from portal.api.errors import ConflictError
from scaffolder import selectors, services
from scaffolder.api import serializers as s
from scaffolder.models import GoldenPathTemplate, ScaffoldRun

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names each bad parameter."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed (token scope, or not your run)."),
    404: OpenApiResponse(ErrorSerializer, description="No such template or run."),
}


def _api_errors(exc: Exception) -> Exception:
    if isinstance(exc, services.ScaffoldError):
        return exceptions.ValidationError(exc.errors)
    if isinstance(exc, services.ScaffoldPermissionError):
        return exceptions.PermissionDenied(str(exc))
    if isinstance(exc, services.ScaffoldConflict):
        return ConflictError(str(exc))
    return exc


def _file_entry(path: str, content: bytes) -> dict[str, Any]:
    try:
        return {"path": path, "size": len(content), "encoding": "utf-8", "content": content.decode("utf-8")}
    except UnicodeDecodeError:
        return {"path": path, "size": len(content), "encoding": "base64", "content": base64.b64encode(content).decode()}


@extend_schema_view(
    list=extend_schema(summary="List golden paths", description="Each with the JSON Schema of its parameters."),
    retrieve=extend_schema(
        summary="One golden path",
        description="With its recorded versions.",
        responses={200: s.TemplateDetailSerializer, **ERRORS},
    ),
)
class TemplateViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.TemplateSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    required_scope: str | None = None

    def get_queryset(self) -> QuerySet[GoldenPathTemplate]:
        return selectors.template_list(user=self.request.user)

    def _detail(self, name: str) -> GoldenPathTemplate:
        try:
            return selectors.template_detail(name=name)
        except GoldenPathTemplate.DoesNotExist:
            raise exceptions.NotFound(f"No golden path {name!r}.") from None

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(s.TemplateDetailSerializer(self._detail(name)).data)

    @extend_schema(
        summary="Preview a run (dry run)",
        description="Renders in memory with the given values and returns every file; nothing is written.",
        request=s.PreviewRequestSerializer,
        responses={200: s.PreviewSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], required_scope="read")
    def preview(self, request: Request, name: str) -> Response:
        template = self._detail(name)
        payload = s.PreviewRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        assert template.latest is not None
        try:
            files = services.preview_render(version=template.latest, values=payload.validated_data["values"])
        except services.ScaffoldError as exc:
            raise _api_errors(exc) from exc
        body = {
            "template": template.name,
            "version": template.latest.version,
            "files": [_file_entry(path, content) for path, content in files.items()],
        }
        return Response(body)


@extend_schema_view(
    list=extend_schema(summary="List my runs", description="Your runs, newest first (platform admins see all)."),
    retrieve=extend_schema(summary="One run, with its steps", responses={200: s.RunDetailSerializer, **ERRORS}),
    create=extend_schema(
        summary="Start a run",
        description="Validates the values field by field, then queues the run; poll the run for its steps.",
        request=s.RunCreateSerializer,
        responses={202: s.RunDetailSerializer, **ERRORS},
    ),
)
class RunViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.RunSerializer
    required_scope: str | None = None

    def get_queryset(self) -> QuerySet[ScaffoldRun]:
        return selectors.run_list(user=self.request.user)

    def _detail(self, pk: Any) -> ScaffoldRun:
        try:
            return selectors.run_detail(user=self.request.user, pk=int(pk))
        except (ScaffoldRun.DoesNotExist, ValueError):
            raise exceptions.NotFound(f"No run {pk!r}.") from None

    def retrieve(self, request: Request, pk: Any) -> Response:
        return Response(s.RunDetailSerializer(self._detail(pk)).data)

    def create(self, request: Request) -> Response:
        payload = s.RunCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            template = selectors.template_detail(name=data["template"])
        except GoldenPathTemplate.DoesNotExist:
            raise exceptions.ValidationError({"template": [f"No golden path {data['template']!r}."]}) from None
        try:
            run = services.run_start(
                actor=request.user, template=template, values=data["values"], publisher=data["publisher"]
            )
        except services.ScaffoldError as exc:
            raise _api_errors(exc) from exc
        return Response(s.RunDetailSerializer(self._detail(run.pk)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Retry a failed run",
        description="Queues the run again; it resumes at the failed step (earlier steps are not run again).",
        request=None,
        responses={
            202: s.RunDetailSerializer,
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="The run has not failed."),
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: Any) -> Response:
        run = self._detail(pk)
        try:
            services.run_retry(actor=request.user, run=run)
        except (services.ScaffoldPermissionError, services.ScaffoldConflict) as exc:
            raise _api_errors(exc) from exc
        return Response(s.RunDetailSerializer(self._detail(pk)).data, status=status.HTTP_202_ACCEPTED)
