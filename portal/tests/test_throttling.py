"""API request rates: per user and per anonymous address, counted in the shared cache."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates() -> Iterator[None]:
    rates = {"user": "3/minute", "anon": "2/minute"}
    cache.clear()
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        yield
    cache.clear()


def test_it_throttles_a_user_over_the_rate_with_the_json_error(low_rates: None, token_client: Any) -> None:
    client = token_client()
    assert [client.get("/api/v1/me/").status_code for _ in range(3)] == [200, 200, 200]
    throttled = client.get("/api/v1/agents/")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0


def test_each_user_has_their_own_count(low_rates: None, token_client: Any, make_user: Any) -> None:
    first, second = token_client(make_user("first")), token_client(make_user("second"))
    for _ in range(3):
        first.get("/api/v1/me/")
    assert first.get("/api/v1/me/").status_code == 429
    assert second.get("/api/v1/me/").status_code == 200


def test_it_throttles_anonymous_requests_per_address(low_rates: None, client: Any) -> None:
    assert [client.get("/v0.1/servers").status_code for _ in range(2)] == [200, 200]
    assert client.get("/v0.1/servers").status_code == 429
    assert client.get("/v0.1/servers", REMOTE_ADDR="10.1.1.1").status_code == 200


def test_the_configured_throttles_are_on_for_every_api_view() -> None:
    from rest_framework.views import APIView

    names = {cls.__name__ for cls in APIView.throttle_classes}
    assert names == {"PortalUserRateThrottle", "PortalAnonRateThrottle"}
