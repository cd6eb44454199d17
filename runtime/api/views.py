"""Runtime API: findings, an agent's usage, eval results, autonomy evidence. Thin: selectors and services do it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Agent
from portal.api.errors import ConflictError
from portal.models import ApiToken
from portal.tokens import token_has_scope
from runtime import findings as finding_services
from runtime import selectors, services
from runtime.api.serializers import EvaluationSerializer, FindingActionSerializer, FindingSerializer
from runtime.models import Finding


def _agent(name: str) -> Agent:
    agent = Agent.objects.filter(name=name.lower()).select_related("owner").first()
    if agent is None:
        raise exceptions.NotFound(f"No agent {name!r}.")
    return agent


def _check_choice(field: str, value: str, choices: list[str]) -> None:
    if value and value not in choices:
        raise exceptions.ValidationError({field: [f"must be one of {', '.join(choices)}; got {value!r}."]})


class FindingListView(generics.ListAPIView):
    """Findings: calls held against grants, unknown agents and tools, tokens claiming another agent."""

    serializer_class = FindingSerializer
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[
            OpenApiParameter("agent", OpenApiTypes.STR),
            OpenApiParameter("tool", OpenApiTypes.STR),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=Finding.Kind.values),
            OpenApiParameter("state", OpenApiTypes.STR, enum=Finding.State.values),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        params = self.request.query_params
        _check_choice("kind", params.get("kind", ""), Finding.Kind.values)
        _check_choice("state", params.get("state", ""), Finding.State.values)
        return selectors.finding_list(
            agent=params.get("agent", ""),
            tool=params.get("tool", ""),
            kind=params.get("kind", ""),
            state=params.get("state", ""),
        )


class FindingDetailView(generics.RetrieveAPIView):
    serializer_class = FindingSerializer
    queryset = Finding.objects.all()

    @extend_schema(request=FindingActionSerializer, responses=FindingSerializer)
    def post(self, request: Request, pk: int) -> Response:
        """Resolve, accept (with a reason) or turn into a grant request."""
        finding = self.get_object()
        payload = FindingActionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        action, reason = payload.validated_data["action"], payload.validated_data["reason"]
        try:
            if action == "resolve":
                finding = finding_services.finding_resolve(actor=request.user, finding=finding, reason=reason)
            elif action == "accept":
                finding = finding_services.finding_accept(actor=request.user, finding=finding, reason=reason)
            else:
                finding = finding_services.finding_request_grant(
                    actor=request.user, finding=finding, justification=reason
                )
        except PermissionError as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        except finding_services.FindingError as exc:
            raise exceptions.ValidationError(exc.errors) from exc
        except finding_services.FindingConflict as exc:
            raise ConflictError(str(exc)) from exc
        return Response(FindingSerializer(finding).data)


class AgentUsageView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("days", OpenApiTypes.INT, description="1 to 90, default 30")],
        responses=OpenApiTypes.OBJECT,
        summary="What the agent called vs what it was granted, errors, latency, tokens and cost",
    )
    def get(self, request: Request, name: str) -> Response:
        try:
            days = int(request.query_params.get("days", "30"))
        except ValueError:
            days = 0
        if not 1 <= days <= 90:
            raise exceptions.ValidationError({"days": ["must be a whole number from 1 to 90."]})
        return Response(selectors.agent_usage(agent=_agent(name), days=days))


class EvaluationScope(permissions.BasePermission):
    """Reading needs `read`; reporting needs `telemetry` (the agent's own CI token) or `write`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        needed = ["read"] if request.method in permissions.SAFE_METHODS else ["telemetry", "write"]
        if any(token_has_scope(token, scope) for scope in needed):
            return True
        self.message = f"This token lacks the {' or '.join(needed)} scope (it has: {', '.join(token.scopes)})."
        return False


class EvaluationView(APIView):
    """Eval results from the agent's CI; the autonomy gate and scorecards read the latest."""

    permission_classes = [permissions.IsAuthenticated, EvaluationScope]

    @extend_schema(responses=EvaluationSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        agent = _agent(name)
        rows = selectors.evaluation_list(agent_name=agent.name)[:50]
        return Response(EvaluationSerializer(rows, many=True).data)

    @extend_schema(request=EvaluationSerializer, responses={201: EvaluationSerializer})
    def post(self, request: Request, name: str) -> Response:
        agent = _agent(name)
        if not selectors.can_report_for(user=request.user, auth=request.auth, agent=agent):
            raise exceptions.PermissionDenied(
                f"Only {agent.name}'s own token or its owners can report its evaluations."
            )
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["send a JSON object."]})
        try:
            evaluation = services.evaluation_record(
                agent_name=agent.name, data=request.data, reported_by=request.user.get_username()
            )
        except services.EvaluationError as exc:
            raise exceptions.ValidationError(exc.errors) from exc
        return Response(EvaluationSerializer(evaluation).data, status=status.HTTP_201_CREATED)


class AutonomyEvidenceView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("level", OpenApiTypes.INT, description="4 or 5 (default: the agent's level)")],
        responses=OpenApiTypes.OBJECT,
        summary="Runtime evidence for raising the agent to autonomy 4 or 5",
    )
    def get(self, request: Request, name: str) -> Response:
        from runtime.autonomy import autonomy_evidence

        agent = _agent(name)
        raw = request.query_params.get("level", str(agent.autonomy_level or 5))
        if raw not in {"1", "2", "3", "4", "5"}:
            raise exceptions.ValidationError({"level": ["must be an autonomy level from 1 to 5."]})
        return Response(autonomy_evidence(agent=agent, level=int(raw)))
