"""The call-time grant check and the gateway policy export. Thin: parse, call one selector, render."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents_api import selectors
from agents_api.api import serializers as s
from agents_api.authentication import CachedTokenAuthentication
from agents_api.checks import check_answer, enforce_requested, grant_check
from agents_api.policy import DEFAULT_IDENTITY, IDENTITY_PATTERN, agentgateway_config
from catalog.api.serializers import ErrorSerializer

POLICY_FORMATS = ("agentgateway",)


class GrantCheckView(APIView):
    authentication_classes = [CachedTokenAuthentication]
    required_scope = "read"  # a question, not a change: gateways hold read-only tokens
    # Not throttled: a gateway asks before every tool call, far above the per-user API rate (6,000/hour), and the
    # throttle's history (pickled in the cache on every request) cost more CPU than the check itself. The check
    # reads an in-process index and writes nothing per call; a token that floods it is limited by the workers.
    throttle_classes: list[type] = []

    @extend_schema(
        summary="May this agent call this tool now?",
        description=(
            "Allowed only for an approved, unexpired grant in the environment that covers the capability. "
            "Unknown agents and tools are answered (allowed false, with the reason), not 404: a gateway needs a "
            "decision. Every denial is sent as the `catalog.signals.grant_check_denied` signal."
        ),
        parameters=[
            OpenApiParameter(
                "enforce",
                bool,
                description="Answer a denial with 403 (same body), for ext_authz-style callers that decide by status.",
            )
        ],
        request=s.GrantCheckRequestSerializer,
        responses={
            200: s.GrantCheckSerializer,
            (403, "application/json"): OpenApiResponse(
                s.GrantCheckSerializer, description="Denied, with `enforce=true`; or a token without `read`."
            ),
            400: OpenApiResponse(ErrorSerializer, description="Bad body; `fields` names each bad field."),
        },
        tags=["grants"],
        # The portal's API token (CachedTokenAuthentication remembers it briefly). A security requirement, as the
        # generator emits it; the stub types `auth` as names.
        auth=[{"apiToken": []}],  # type: ignore[list-item]
    )
    def post(self, request: Request) -> Response:
        payload = s.GrantCheckRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        decision = grant_check(**payload.validated_data)
        status, body = check_answer(decision, enforce=enforce_requested(request.query_params.get("enforce", "")))
        return Response(status=status, data=body)


class _JsonWhateverTheFormat(DefaultContentNegotiation):
    """`?format=` names the policy format here, not a renderer (DRF's default reading): always JSON."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class GrantPolicyView(APIView):
    content_negotiation_class = _JsonWhateverTheFormat

    @extend_schema(
        summary="The active grants as a gateway policy",
        description=(
            "For a gateway that cannot call the check: `format=agentgateway` gives an agentgateway configuration "
            "(its `mcp` section: the granted MCP servers as targets, one CEL rule per grant on `mcp.tool.name`). "
            "Always built from the grants as they are now; fetch it again after a change."
        ),
        parameters=[
            OpenApiParameter("format", str, enum=POLICY_FORMATS, required=True, description="Policy format."),
            OpenApiParameter("environment", str, description="Environment whose grants to export (production)."),
            OpenApiParameter("identity", str, description="CEL expression holding the agent's catalog name (jwt.sub)."),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            400: OpenApiResponse(ErrorSerializer, description="Unknown format or bad parameter."),
        },
        tags=["grants"],
    )
    def get(self, request: Request) -> Response:
        fmt = request.query_params.get("format", "")
        if fmt not in POLICY_FORMATS:
            raise exceptions.ValidationError({"format": [f"must be one of {', '.join(POLICY_FORMATS)}."]})
        identity = request.query_params.get("identity", DEFAULT_IDENTITY)
        if not IDENTITY_PATTERN.fullmatch(identity):
            raise exceptions.ValidationError(
                {"identity": ["must be a CEL field path such as jwt.sub or source.identity.serviceAccount."]}
            )
        environment = request.query_params.get("environment", "production").strip().lower()
        grants = selectors.policy_grants(environment=environment, now=timezone.now())
        return Response(agentgateway_config(grants, identity=identity))
