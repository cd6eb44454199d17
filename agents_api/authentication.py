"""A lean token check for the call-time grant check, which sits in a gateway's path on every tool call.

The same tokens and the same verification as the rest of the API (portal.tokens.token_authenticate), remembered
per process for a few seconds by the digest of the presented secret, so a gateway's steady stream of checks does
not read the token row on each one. A revoked token keeps answering checks for at most TOKEN_CACHE_SECONDS; an
expired one is refused at once (its expiry is compared on every use).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework.request import Request

from portal.authentication import ApiTokenAuthentication
from portal.context import actor_var
from portal.models import ApiToken
from portal.tokens import token_actor

TOKEN_CACHE_SECONDS = 5.0
MAX_TOKENS = 10_000


@dataclass(frozen=True)
class _Verified:
    user: AbstractBaseUser
    token: ApiToken
    until: float


_verified: dict[str, _Verified] = {}
_lock = threading.Lock()


def _key(header: str) -> str:
    return hashlib.sha256(header.encode()).hexdigest()


def remembered_token(header: str) -> tuple[AbstractBaseUser, ApiToken] | None:
    """The user and token of an `Authorization` header verified in the last TOKEN_CACHE_SECONDS and not expired
    since, made the audit actor; None when it must be verified (again) by CachedTokenAuthentication."""
    found = _verified.get(_key(header))
    if found is None or found.until <= time.monotonic() or found.token.expires_at <= timezone.now():
        return None
    actor_var.set(token_actor(found.token))
    return found.user, found.token


class CachedTokenAuthentication(ApiTokenAuthentication):
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        remembered = remembered_token(header)
        if remembered is not None:
            return remembered
        now = time.monotonic()
        key = _key(header)
        result = super().authenticate(request)
        if result is not None:
            with _lock:
                if len(_verified) >= MAX_TOKENS:
                    _verified.clear()
                _verified[key] = _Verified(user=result[0], token=result[1], until=now + TOKEN_CACHE_SECONDS)
        return result
