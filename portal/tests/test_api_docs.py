"""/api/docs/: Swagger UI over /api/schema/, every asset served by the portal itself (no CDN), under our CSP."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_it_serves_swagger_ui_with_only_local_assets(client: Client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="swagger-ui"' in html
    urls = _asset_urls(html)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls)
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "<style" not in html
    assert not re.search(r"<script>(?!</script>)", html), "an inline script would be blocked by the CSP"
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        body = b"".join(asset.streaming_content) if asset.streaming else asset.content
        assert b"cdn.jsdelivr" not in body and b"unpkg.com" not in body, url


def test_its_start_up_script_points_at_the_local_schema(client: Client) -> None:
    response = client.get("/api/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    script = response.content.decode()
    assert '"/api/schema/"' in script
    assert "https://" not in script


def test_the_schema_it_shows_is_the_portals(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert b"Agent Portal API" in response.content
