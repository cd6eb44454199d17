"""Request rates per user (or token identity) and per anonymous address, counted in the default cache: Redis,
shared by every process, when CACHE_URL is set; per process otherwise."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


def _rate(scope: str) -> str | None:
    # Read per request, not at import as DRF does, so the rates follow the settings (and tests can lower them).
    rates: dict[str, str | None] = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
    return rates.get(scope)


class PortalUserRateThrottle(UserRateThrottle):
    def get_rate(self) -> str | None:
        return _rate(self.scope)


class PortalAnonRateThrottle(AnonRateThrottle):
    def get_rate(self) -> str | None:
        return _rate(self.scope)
