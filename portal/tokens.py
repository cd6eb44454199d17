"""API tokens: issue (secret shown once), authenticate (digest lookup), revoke. Writes are audited."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.audit import audit_record
from portal.context import Actor
from portal.models import ApiToken
from portal.types import User

TOKEN_PATTERN = re.compile(r"^ap_(?P<prefix>[a-z0-9]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
ALL_SCOPES = tuple(ApiToken.Scope.values)
# Last-used timestamps are informational; writing them on every request would make reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=5)


class TokenError(Exception):
    """A token could not be issued or used; the message says why, without echoing the secret."""


class TokenValidationError(TokenError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BoundAgent:
    id: int
    name: str


# Set by the plugin that knows agents (runtime): (issuer, agent name) -> the agent, or TokenValidationError when the
# agent does not exist or the issuer does not own it. The core stays ignorant of the catalog.
agent_binder: Callable[[User, str], BoundAgent] | None = None


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the only time the full token exists outside the client


def _digest(secret_token: str) -> str:
    return hashlib.sha256(secret_token.encode()).hexdigest()


def _validate_scopes(scopes: Collection[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise TokenValidationError(
            "scopes", f"unknown scope(s) {', '.join(unknown)}; accepted: {', '.join(ALL_SCOPES)}"
        )
    if not scopes:
        raise TokenValidationError("scopes", f"choose at least one of {', '.join(ALL_SCOPES)}")
    return sorted(set(scopes))


@transaction.atomic
def token_issue(
    *,
    issued_by: User,
    name: str,
    scopes: Collection[str],
    expires_in_days: int,
    identity: User | None = None,
    kind: str = ApiToken.Kind.PERSONAL,
    subject: str = "",
    agent: str = "",
) -> IssuedToken:
    """`agent` binds the token to one catalog agent (an agent's own telemetry token, issued by its owners)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenValidationError("name", "give the token a name of 1 to 100 characters")
    clean_scopes = _validate_scopes(scopes)
    max_days = settings.API_TOKEN_MAX_DAYS
    if not 1 <= expires_in_days <= max_days:
        raise TokenValidationError("expires_in_days", f"must be between 1 and {max_days} days")
    if kind not in ApiToken.Kind.values:
        raise TokenValidationError("kind", f"must be one of {', '.join(ApiToken.Kind.values)}")
    if ApiToken.Scope.ADMIN in clean_scopes and not getattr(issued_by, "is_superuser", False):
        from portal.roles import user_is_platform_admin

        if not user_is_platform_admin(issued_by):
            raise TokenValidationError("scopes", "only platform admins can issue tokens with the admin scope")
    bound_agent_id = None
    if agent.strip():
        if agent_binder is None:
            raise TokenValidationError("agent", "binding tokens to agents is not available in this portal")
        if ApiToken.Scope.TELEMETRY not in clean_scopes:
            raise TokenValidationError("agent", "only tokens with the telemetry scope can be bound to an agent")
        bound = agent_binder(issued_by, agent.strip())
        bound_agent_id, kind, subject = bound.id, ApiToken.Kind.AGENT, bound.name
    prefix = secrets.token_hex(6)
    secret = f"ap_{prefix}_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    token = ApiToken.objects.create(
        name=name,
        kind=kind,
        user=identity or issued_by,
        subject=subject,
        created_by=issued_by,
        key_prefix=prefix,
        key_digest=_digest(secret),
        scopes=clean_scopes,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
        bound_agent_id=bound_agent_id,
    )
    audit_record(
        action="token.issued",
        target=token,
        changes={
            "name": name,
            "kind": kind,
            "subject": subject,
            "scopes": clean_scopes,
            "expires_at": token.expires_at,
            "bound_agent_id": bound_agent_id,
        },
    )
    return IssuedToken(token=token, secret=secret)


def token_authenticate(raw: str) -> ApiToken:
    """Return the active token for a presented secret or raise TokenError with a reason safe to show."""
    match = TOKEN_PATTERN.match(raw.strip())
    if not match:
        raise TokenError("Malformed token: expected 'ap_<12 characters>_<43 characters>'.")
    token = ApiToken.objects.select_related("user").filter(key_prefix=match["prefix"]).first()
    if token is None or not hmac.compare_digest(token.key_digest, _digest(raw.strip())):
        raise TokenError("Unknown token.")
    if token.revoked_at is not None:
        raise TokenError("This token has been revoked.")
    if token.expires_at <= timezone.now():
        raise TokenError("This token has expired.")
    if not token.user.is_active:
        raise TokenError("The identity behind this token is disabled.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_has_scope(token: ApiToken, scope: str) -> bool:
    return scope in token.scopes or ApiToken.Scope.ADMIN in token.scopes


def token_actor(token: ApiToken) -> Actor:
    return Actor(
        kind="token",
        user_id=token.user_id,
        label=f"{token.user.get_username()} (token {token.name})",
        token_id=token.pk,
    )


@transaction.atomic
def token_revoke(*, token: ApiToken, revoked_by: User) -> ApiToken:
    if not can_manage_token(user=revoked_by, token=token):
        raise TokenError("You can only revoke tokens you issued or that act as you.")
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    if updated:
        audit_record(action="token.revoked", target=token, changes={"revoked_at": token.revoked_at})
    return token


@transaction.atomic
def tokens_suspend_for_agent(*, agent_id: int, reason: str) -> int:
    """Revoke every active token bound to the agent (a policy's answer to a critical finding); audited."""
    now = timezone.now()
    tokens = list(ApiToken.objects.select_for_update().filter(bound_agent_id=agent_id, revoked_at__isnull=True))
    for token in tokens:
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=now)
        token.revoked_at = now
        audit_record(action="token.suspended", target=token, changes={"revoked_at": now, "reason": reason})
    return len(tokens)


def can_manage_token(*, user: User, token: ApiToken) -> bool:
    from portal.roles import user_is_platform_admin

    return token.created_by_id == user.pk or token.user_id == user.pk or user_is_platform_admin(user)


def tokens_visible_to(user: User):  # type: ignore[no-untyped-def]
    from django.db.models import Q

    return ApiToken.objects.filter(Q(created_by=user) | Q(user=user)).select_related("user", "created_by")
