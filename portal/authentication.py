from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Sum
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from portal.context import actor_var
from portal.models import ApiToken
from portal.roles import act_without_platform_admin
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
        if not token_has_scope(token, ApiToken.Scope.ADMIN):
            # What only the platform-admin role allows, a token allows only with the admin scope as well: every
            # service that asks user_is_platform_admin gets "no" for this request.
            act_without_platform_admin(token.user)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class TokenScopePermission(permissions.BasePermission):
    """Tokens act within their scopes: reads need `read`, writes `write`; views may ask for more
    (`required_scope = "review"`, or `"admin"` for what only platform admins do). A token without `admin` never
    acts with the platform-admin role (see ApiTokenAuthentication). Session users are limited by their
    permissions alone."""

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
        if needed == ApiToken.Scope.ADMIN:
            self.message = f"Only platform admins may do this, and by token only with the 'admin' scope. {self.message}"
        return False


class LoginFailureHandler(AxesDatabaseHandler):
    """Two lock-outs: `LOGIN_FAILURE_LIMIT` failures of one username from one address lock that pair (so a user
    locked from one address still signs in from another), and `LOGIN_ADDRESS_FAILURE_LIMIT` failures from one
    address, whatever the usernames, lock the address (password spraying).

    Axes compares the largest count of its `AXES_LOCKOUT_PARAMETERS` with one limit; the address count is scaled
    onto that limit so each parameter has its own. A successful sign-in clears its own username and address only:
    one known account must not wipe the address's count of failures against others."""

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        by_address, by_username_and_address = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        limit, address_limit = settings.AXES_FAILURE_LIMIT, settings.LOGIN_ADDRESS_FAILURE_LIMIT
        return max(by_username_and_address, by_address * limit // address_limit)

    def reset_user_attempts(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        _, by_username_and_address = self.filter_user_attempts(request, credentials)
        count, _ = by_username_and_address.delete()
        return int(count)
