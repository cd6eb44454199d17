from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from portal.context import actor_var
from portal.models import ApiToken
from portal.tokens import TokenError, token_actor, token_authenticate, token_has_scope


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer ap_...`. A bad token is a 401 with a JSON body, never a silent anonymous request."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() not in {"bearer", "token"}:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            token = token_authenticate(parts[1])
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        actor_var.set(token_actor(token))
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class TokenScopePermission(permissions.BasePermission):
    """Tokens act within their scopes: reads need `read`, writes `write`; views may ask for more
    (`required_scope = "review"`). Session users are limited by their permissions alone."""

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        needed = getattr(view, "required_scope", None)
        if needed is None:
            needed = ApiToken.Scope.READ if request.method in permissions.SAFE_METHODS else ApiToken.Scope.WRITE
        if token_has_scope(token, needed):
            return True
        self.message = (
            f"This token lacks the '{needed}' scope needed for this request (it has: {', '.join(token.scopes)})."
        )
        return False
