"""Single sign-on with OpenID Connect: mozilla-django-oidc's code flow, configured from the issuer's discovery.

mozilla-django-oidc runs the authorization-code flow (state, nonce, PKCE) and verifies the ID token's signature
against the provider's JWKS. This module adds what a portal needs on top:
- endpoints from ``OIDC_ISSUER/.well-known/openid-configuration``, whose ``issuer`` must be the configured one;
- ID tokens checked for issuer, audience and expiry too, and the userinfo subject matched to the ID token's;
- people found by (issuer, subject) (``OidcIdentity``), never by e-mail address;
- ``OIDC_GROUP_MAP`` applied at every sign-in: roles and team memberships named in the map follow the provider's
  groups exactly (added and removed); what the map does not name is left to the portal's admins.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from portal.audit import audit_record
from portal.models import OidcIdentity

logger = logging.getLogger(__name__)

DISCOVERY_CACHE_SECONDS = 3600
TEAM_MEMBER, TEAM_MAINTAINER = "member", "maintainer"


class SsoError(Exception):
    """Sign-in through the provider cannot go on; the message is safe to show."""


@dataclass(frozen=True)
class ProviderEndpoints:
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def provider_endpoints() -> ProviderEndpoints:
    """The issuer's endpoints from its discovery document (cached an hour). The document must name the configured
    issuer exactly (OpenID Connect Discovery 1.0, section 4.3): a look-alike host or path is refused."""
    key = f"portal:oidc-discovery:{settings.OIDC_ISSUER}"
    cached = cache.get(key)
    if cached is not None:
        return ProviderEndpoints(**cached)
    url = f"{settings.OIDC_ISSUER}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SsoError(f"the identity provider's discovery document could not be read ({url}): {exc}") from exc
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != settings.OIDC_ISSUER:
        issuer = document.get("issuer") if isinstance(document, dict) else None
        raise SsoError(f"the identity provider calls itself {issuer!r}, not the configured {settings.OIDC_ISSUER!r}")
    try:
        endpoints = ProviderEndpoints(
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            userinfo_endpoint=document["userinfo_endpoint"],
            jwks_uri=document["jwks_uri"],
        )
    except KeyError as exc:
        raise SsoError(f"the identity provider's discovery document lacks {exc.args[0]}") from exc
    cache.set(key, endpoints.__dict__, DISCOVERY_CACHE_SECONDS)
    return endpoints


# --- Group map: provider groups -> roles and team memberships ----------------------------------------------------
@dataclass(frozen=True)
class Rights:
    roles: frozenset[str]
    teams: Mapping[str, str]  # team name -> member or maintainer


def rights_for(groups: Iterable[str], group_map: Mapping[str, list[str]]) -> Rights:
    """Pure: what the provider's groups give, by the map. Maintainer wins over member for one team."""
    roles: set[str] = set()
    teams: dict[str, str] = {}
    for group in groups:
        for grant in group_map.get(group, []):
            kind, name, *rest = grant.split(":")
            if kind == "role":
                roles.add(name)
            elif rest == [TEAM_MAINTAINER] or teams.get(name) == TEAM_MAINTAINER:
                teams[name] = TEAM_MAINTAINER
            else:
                teams[name] = TEAM_MEMBER
    return Rights(roles=frozenset(roles), teams=teams)


def managed_by_map(group_map: Mapping[str, list[str]]) -> Rights:
    """Every role and team the map names: those follow the provider; anything else is the admins' to give."""
    everything = rights_for(group_map.keys(), group_map)
    return Rights(roles=everything.roles, teams=everything.teams)


def groups_from_claims(claims: Mapping[str, Any]) -> list[str]:
    value = claims.get(settings.OIDC_GROUPS_CLAIM, [])
    if isinstance(value, str):
        value = [value]
    return [str(group) for group in value] if isinstance(value, list) else []


# The catalog owns teams: its app config plugs in the function that makes a user's memberships of the teams the map
# manages what the provider says (portal imports no app). Called with user, wanted ({team: role}) and managed (team
# names); returns {team: {"before": role|None, "after": role|None}} for each change.
team_memberships_sync: Callable[..., dict[str, dict[str, str | None]]] | None = None


@transaction.atomic
def user_rights_sync(*, user: AbstractBaseUser, groups: Iterable[str]) -> dict[str, Any]:
    """Make the user's mapped roles and teams what the provider's groups say; audited when anything changed."""
    group_map = settings.OIDC_GROUP_MAP
    wanted, managed = rights_for(groups, group_map), managed_by_map(group_map)
    user_groups = user.groups  # type: ignore[attr-defined]
    held_roles = set(user_groups.filter(name__in=managed.roles).values_list("name", flat=True))
    changes: dict[str, Any] = {}
    added_roles, removed_roles = sorted(wanted.roles - held_roles), sorted(held_roles - wanted.roles)
    if added_roles:
        user_groups.add(*(Group.objects.get_or_create(name=role)[0] for role in added_roles))
    if removed_roles:
        user_groups.remove(*Group.objects.filter(name__in=removed_roles))
    if added_roles or removed_roles:
        changes["roles"] = {"added": added_roles, "removed": removed_roles}

    team_changes = (
        team_memberships_sync(user=user, wanted=wanted.teams, managed=managed.teams) if team_memberships_sync else {}
    )
    if team_changes:
        changes["teams"] = team_changes
    user.__dict__.pop("_portal_roles", None)  # portal.roles caches the user's groups per request
    if changes:
        audit_record(action="portal.sso.rights_synced", target=user, changes={"groups": sorted(groups), **changes})
    return changes


# --- Authentication backend --------------------------------------------------------------------------------------
def _unique_username(claims: Mapping[str, Any]) -> str:
    base = str(claims.get("preferred_username") or str(claims.get("email", "")).split("@")[0] or claims["sub"])
    base = re.sub(r"[^\w.@+-]", "-", base)[:140] or "user"
    users = get_user_model().objects
    candidate, number = base, 1
    while users.filter(username__iexact=candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


class PortalOidcBackend(OIDCAuthenticationBackend):
    """The code flow's back channel. Django builds every backend for each password login and session look-up, so
    nothing here talks to the provider until a callback with a code arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return provider_endpoints().token_endpoint

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return provider_endpoints().userinfo_endpoint

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return provider_endpoints().jwks_uri

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> AbstractBaseUser | None:
        if not settings.OIDC_ENABLED or request is None or "nonce" not in kwargs:
            return None  # a password login, or no sign-on configured
        try:
            return super().authenticate(request, **kwargs)
        except (SsoError, SuspiciousOperation, requests.RequestException, jwt.PyJWTError) as exc:
            logger.warning("single sign-on refused: %s", exc)
            request.sso_error = str(exc)  # type: ignore[attr-defined]
            return None

    def get_payload_data(self, token: str | bytes, key: Any) -> dict[str, Any]:
        """The library checks the signature only; an ID token must also come from our issuer, for us, unexpired."""
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=settings.OIDC_CLIENT_ID,
                issuer=settings.OIDC_ISSUER,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"the ID token was refused: {exc}") from exc

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        claims = super().get_userinfo(access_token, id_token, payload)
        if claims.get("sub") != payload.get("sub"):  # OpenID Connect Core 1.0, section 5.3.2
            raise SuspiciousOperation("the userinfo subject is not the ID token's")
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(
            oidc_identities__issuer=settings.OIDC_ISSUER, oidc_identities__subject=claims["sub"]
        )

    @transaction.atomic
    def create_user(self, claims: dict[str, Any]) -> AbstractBaseUser:
        user = self.UserModel.objects.create_user(_unique_username(claims), email=claims.get("email", ""))
        OidcIdentity.objects.create(user=user, issuer=settings.OIDC_ISSUER, subject=claims["sub"])
        audit_record(action="portal.sso.user_created", target=user, changes={"issuer": settings.OIDC_ISSUER})
        return self.update_user(user, claims)

    @transaction.atomic
    def update_user(self, user: AbstractBaseUser, claims: dict[str, Any]) -> AbstractBaseUser:
        name = str(claims.get("name", "")).strip()
        first, _, last = name.partition(" ")
        fields = {"email": claims.get("email", "") or "", "first_name": first[:150], "last_name": last[:150]}
        changed = [field for field, value in fields.items() if value and getattr(user, field) != value]
        for field in changed:
            setattr(user, field, fields[field])
        if changed:
            user.save(update_fields=changed)
        OidcIdentity.objects.filter(user=user, issuer=settings.OIDC_ISSUER, subject=claims["sub"]).update(
            last_login_at=timezone.now()
        )
        user_rights_sync(user=user, groups=groups_from_claims(claims))
        return user


# --- Views ----------------------------------------------------------------------------------------------------
class SsoStartView(OIDCAuthenticationRequestView):
    """Redirects to the provider's authorization endpoint (with state, nonce and a PKCE challenge)."""

    def __init__(self, **kwargs: Any) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID

    @property
    def OIDC_OP_AUTH_ENDPOINT(self) -> str:
        return provider_endpoints().authorization_endpoint

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            return HttpResponseRedirect(resolve_url("portal:login"))
        try:
            return super().get(request)
        except SsoError as exc:
            logger.warning("single sign-on unavailable: %s", exc)
            messages.error(request, f"Single sign-on is unavailable: {exc}.")
            return HttpResponseRedirect(resolve_url("portal:login"))


class SsoCallbackView(OIDCAuthenticationCallbackView):
    def login_failure(self) -> HttpResponse:
        reason = getattr(self.request, "sso_error", "") or self.request.GET.get("error_description", "")
        messages.error(self.request, "Single sign-on failed" + (f": {reason}." if reason else "."))
        return HttpResponseRedirect(resolve_url("portal:login"))
