"""Approvals API: parse input, call one service or selector, render. Rules live in `approvals.services`; its
exceptions become 400 (ApprovalError), 403 (ApprovalPermissionError) and 409 (ApprovalConflict) in
`portal.api.errors`. Deciding and attesting need a token with the `review` scope."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from approvals import attestation, decisions, selectors, services, submitting
from approvals import policies as approvals_policies
from approvals.api import serializers as s
from approvals.models import ApprovalPolicy, ApprovalRequest
from catalog.api.serializers import ErrorSerializer
from catalog.risk import Tier
from portal.models import ApiToken

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names each bad field."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed: who you are, your role, or the token's scope."),
    404: OpenApiResponse(ErrorSerializer, description="No such request or policy."),
    409: OpenApiResponse(
        ErrorSerializer, description="The request changed meanwhile (decided, withdrawn, stage moved on); reload."
    ),
}
ACTION_ERRORS = {code: ERRORS[code] for code in (400, 403, 404, 409)}
TIER_ORDER = {tier.value: tier.rank for tier in Tier}


def _not_found(kind: str, key: object) -> exceptions.NotFound:
    return exceptions.NotFound(f"No {kind} {key!r}.")


@extend_schema_view(
    list=extend_schema(
        summary="List approval requests",
        description="Every signed-in user may read requests. `awaiting_me=true` is your review queue.",
        parameters=[s.RequestListQuerySerializer],
    ),
    retrieve=extend_schema(
        summary="One approval request",
        description=(
            "With the checks of the current round, decisions, the policy's stages, the bound facts, the risk "
            "factors, the timeline, what changed since the last round, and whether you may decide (`can_decide`, "
            "`why_not`)."
        ),
        responses={200: s.ApprovalRequestDetailSerializer, 403: ERRORS[403], 404: ERRORS[404]},
    ),
    create=extend_schema(
        summary="Submit an approval request",
        description=(
            "You must maintain the owning team (or be a platform admin). Automated checks run next; the request "
            "then waits at the policy's first stage, or for the owner's attestation by a maintainer other than you "
            "(low tier), or is approved when the policy is automatic without attestation. `attest: true` is "
            "refused (400): no request is completed by its requester alone. For "
            "`tool_grant`, give `grant`, or `agent` and `tool` to request the grant (idempotent) and submit it. "
            "409 when an open request of this kind exists for the subject."
        ),
        request=s.RequestSubmitSerializer,
        responses={201: s.ApprovalRequestDetailSerializer, **{code: ERRORS[code] for code in (400, 403, 409)}},
    ),
    decide=extend_schema(
        summary="Decide the current stage",
        description=(
            "Needs a token with the `review` scope and the stage's role. Nobody decides their own request, one "
            "person counts once per round, and at high and critical tier nobody from the owning team approves "
            "(403). A comment is required to reject or request changes. Approving needs `facts_fingerprint`, the "
            "request's `facts_fingerprint` you reviewed. 409 when the request was decided or withdrawn meanwhile, "
            "`stage_index` is not the current stage any more, or the facts changed since (a new round started: "
            "the message names what changed)."
        ),
        request=s.DecideSerializer,
        responses={200: s.ApprovalRequestDetailSerializer, **ACTION_ERRORS},
    ),
    attest=extend_schema(
        summary="Attest as the owner",
        description=(
            "For requests waiting for the owner's attestation (low tier): a maintainer of the owning team who is not "
            "the requester attests the descriptor is true, which approves the request. When the requester is the "
            "team's only maintainer, a platform admin or a security reviewer attests instead. Nobody attests their "
            "own request (403); 409 when the request is not waiting for an attestation. Needs the `review` scope."
        ),
        request=None,
        responses={200: s.ApprovalRequestDetailSerializer, **ACTION_ERRORS},
    ),
    hints_attestation=extend_schema(
        summary="Attest the capability hints of the request's tool",
        description=(
            "Security reviewers and leads outside the owning team vouch for the tool's declared hints, so the "
            "rubric trusts them. The live MCP server is asked for its tools first and its answer is stored as "
            "evidence; 409 when it contradicts the declaration or the capabilities changed since you loaded "
            "`hints.capabilities_hash`. Attesting is a change of the tool's facts: an open request starts a new "
            "round. Needs the `review` scope."
        ),
        request=s.HintsAttestSerializer,
        responses={200: s.ApprovalRequestDetailSerializer, **ACTION_ERRORS},
    ),
    withdraw=extend_schema(
        summary="Withdraw a request",
        description="The requester (or a platform admin) withdraws an open request; 409 once it is closed.",
        request=None,
        responses={200: s.ApprovalRequestDetailSerializer, **ACTION_ERRORS},
    ),
    resubmit=extend_schema(
        summary="Resubmit after changes were requested",
        description=(
            "Starts the next round: re-scores the subject, runs the checks again and shows what changed. The "
            "requester, a maintainer of the owning team or a platform admin resubmits; `attest: true` counts only "
            "from someone who may attest (not the requester: 400)."
        ),
        request=s.ResubmitSerializer,
        responses={200: s.ApprovalRequestDetailSerializer, **ACTION_ERRORS},
    ),
)
class ApprovalRequestViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ApprovalRequestSerializer
    query_serializer_class = s.RequestListQuerySerializer
    lookup_value_regex = r"\d+"

    @property
    def required_scope(self) -> str | None:
        """Decisions need the `review` scope; other requests get `read` or `write` by method."""
        return ApiToken.Scope.REVIEW if self.action in ("decide", "attest", "hints_attestation") else None

    def get_queryset(self) -> QuerySet[ApprovalRequest]:
        if getattr(self, "swagger_fake_view", False):
            return ApprovalRequest.objects.none()
        query = s.RequestListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        user = self.request.user
        state, kind, tier = filters.get("state", ""), filters.get("kind", ""), filters.get("tier", "")
        team = filters.get("team", "")
        if filters["awaiting_me"]:
            requests = selectors.review_queue(user=user, tier=tier, kind=kind, team=team)
            if state:
                requests = requests.filter(state=state)
            if filters["mine"]:
                requests = requests.filter(requester_id=user.pk)
        elif filters["mine"]:
            requests = selectors.my_requests(user=user, state=state)
            requests = requests.filter(**{key: value for key, value in (("kind", kind), ("tier", tier)) if value})
            if team:
                requests = requests.filter(owning_team__name=team)
        else:
            requests = selectors.request_list(user=user, state=state, kind=kind, tier=tier)
            if team:
                requests = requests.filter(owning_team__name=team)
        return requests.select_related("owning_team", "requester", "agent", "tool", "grant__agent", "grant__tool")

    def _detail(self, pk: str) -> ApprovalRequest:
        try:
            return selectors.request_detail(request_id=int(pk))
        except ApprovalRequest.DoesNotExist:
            raise _not_found("approval request", int(pk)) from None

    def _render(self, pk: str | int, code: int = status.HTTP_200_OK) -> Response:
        approval = self._detail(str(pk))
        return Response(
            s.ApprovalRequestDetailSerializer(approval, context=self.get_serializer_context()).data, status=code
        )

    def retrieve(self, request: Request, pk: str) -> Response:
        return self._render(pk)

    def create(self, request: Request) -> Response:
        payload = s.RequestSubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data: dict[str, Any] = payload.validated_data
        agent, tool, grant = data["agent"], data["tool"], data["grant"]
        if data["kind"] == ApprovalRequest.Kind.TOOL_GRANT and grant is None and agent and tool:
            # Idempotent: a second submit finds the same requested grant.
            approval = submitting.grant_request_submit(
                actor=request.user,
                agent=agent,
                tool=tool,
                environment=data["environment"],
                capability_names=data["capability_names"],
                justification=data["justification"],
                attest=data["attest"],
            )
        else:
            approval = submitting.request_submit(
                actor=request.user,
                kind=data["kind"],
                agent=agent,
                tool=tool,
                grant=grant,
                justification=data["justification"],
                attest=data["attest"],
            )
        return self._render(approval.pk, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str) -> Response:
        approval = self._detail(pk)
        payload = s.DecideSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        decisions.request_decide(
            actor=request.user,
            request_id=approval.pk,
            subject=services.loaded_subject(approval),
            **payload.validated_data,
        )
        return self._render(pk)

    @action(detail=True, methods=["post"])
    def attest(self, request: Request, pk: str) -> Response:
        self._detail(pk)
        decisions.request_attest(actor=request.user, request_id=int(pk))
        return self._render(pk)

    @action(detail=True, methods=["post"], url_path="hints-attestation")
    def hints_attestation(self, request: Request, pk: str) -> Response:
        approval = self._detail(pk)
        payload = s.HintsAttestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        tool = attestation.request_tool(approval)
        if tool is None:
            raise exceptions.ValidationError({"request": "this request is about an agent: it has no tool hints."})
        attestation.hints_attest(actor=request.user, tool=tool, **payload.validated_data)
        return self._render(pk)

    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        self._detail(pk)
        decisions.request_withdraw(actor=request.user, request_id=int(pk))
        return self._render(pk)

    @action(detail=True, methods=["post"])
    def resubmit(self, request: Request, pk: str) -> Response:
        self._detail(pk)
        payload = s.ResubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        submitting.request_resubmit(actor=request.user, request_id=int(pk), **payload.validated_data)
        return self._render(pk)


@extend_schema_view(
    list=extend_schema(summary="List approval policies", description="One policy per risk tier, lowest first."),
    retrieve=extend_schema(summary="One tier's approval policy", responses={200: s.PolicySerializer, 404: ERRORS[404]}),
    partial_update=extend_schema(
        summary="Change a tier's approval policy (platform admins)",
        description=(
            "Keys left out stay as they are; `stages`, when given, replaces every stage. Audited. Open requests "
            "keep the policy they were submitted under."
        ),
        request=s.PolicySerializer,
        responses={200: s.PolicySerializer, **{code: ERRORS[code] for code in (400, 403, 404)}},
    ),
)
class PolicyViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.PolicySerializer
    pagination_class = None
    lookup_field = "tier"

    @property
    def required_scope(self) -> str | None:
        """Editing a policy is for platform admins: a token needs the `admin` scope."""
        return ApiToken.Scope.ADMIN if self.action == "partial_update" else None

    lookup_value_regex = "[a-z]+"

    def get_queryset(self) -> QuerySet[ApprovalPolicy]:
        return ApprovalPolicy.objects.prefetch_related("stages")

    def list(self, request: Request) -> Response:
        policies = sorted(self.get_queryset(), key=lambda policy: TIER_ORDER.get(policy.tier, len(TIER_ORDER)))
        return Response(s.PolicySerializer(policies, many=True).data)

    def _get(self, tier: str) -> ApprovalPolicy:
        policy = self.get_queryset().filter(tier=tier).first()
        if policy is None:
            raise _not_found("policy for tier", tier)
        return policy

    def retrieve(self, request: Request, tier: str) -> Response:
        return Response(s.PolicySerializer(self._get(tier)).data)

    def partial_update(self, request: Request, tier: str) -> Response:
        policy = self._get(tier)
        payload = s.PolicySerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        stages = data.pop("stages", None)
        approvals_policies.policy_update(actor=request.user, policy=policy, data=data, stages=stages)
        return Response(s.PolicySerializer(self._get(tier)).data)
