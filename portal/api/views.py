from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.errors import error_body
from portal.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    MeSerializer,
)
from portal.models import ApiToken
from portal.roles import ROLE_GROUPS
from portal.tokens import TokenError, TokenValidationError, token_issue, token_revoke, tokens_visible_to


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="Who the request is authenticated as")
    def get(self, request: Request) -> Response:
        user = request.user
        group_names = list(user.groups.values_list("name", flat=True))
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(
            {
                "username": user.get_username(),
                "authenticated_by": "token" if token else "session",
                "token_scopes": token.scopes if token else None,
                "roles": [name for name in group_names if name in ROLE_GROUPS],
                "teams": [name.removeprefix("team:") for name in group_names if name.startswith("team:")],
            }
        )


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your API tokens. Creating one returns its secret once; only a digest is stored."""

    serializer_class = ApiTokenSerializer
    lookup_value_regex = r"\d+"  # any other id is the JSON 404 of api_not_found, never a lookup that raises

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return tokens_visible_to(self.request.user).order_by("-created_at")

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        payload = ApiTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            issued = token_issue(issued_by=request.user, **payload.validated_data)
        except TokenValidationError as exc:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({exc.field: [exc.message]}) from exc
        body = ApiTokenSerializer(issued.token).data | {"token": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = get_object_or_404(self.get_queryset(), pk=pk)
        try:
            token = token_revoke(token=token, revoked_by=request.user)
        except TokenError as exc:
            from rest_framework.exceptions import PermissionDenied

            raise PermissionDenied(str(exc)) from exc
        return Response(ApiTokenSerializer(token).data)


@csrf_exempt  # it changes nothing; a POST to an unknown path must get this 404, not the CSRF failure page
def api_not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """Any path under /api/ that names no endpoint (or an id of the wrong shape): the API's JSON error, not the
    HTML page people get."""
    message = f"No API endpoint at {request.path!r}."
    if not request.path.endswith("/"):
        try:
            resolve(request.path + "/")
        except Resolver404:
            pass
        else:
            message += f" Did you mean {request.path + '/'!r}?"
    return JsonResponse(error_body(404, "not_found", message), status=404)
