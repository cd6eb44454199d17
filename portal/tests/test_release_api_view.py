"""An API response's view, request and rows are freed when the response is sent, not by the cyclic collector
(portal.middleware.ReleaseApiViewMiddleware)."""

from __future__ import annotations

import gc
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.test.client import ClientHandler

from catalog.tests.factories import ToolFactory

pytestmark = pytest.mark.django_db
RELEASE = "portal.middleware.ReleaseApiViewMiddleware"


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def _cyclic_garbage_per_request(cookie: str, path: str, requests: int = 5) -> float:
    """Through the test client's WSGI handler, without the client, which keeps each response in cycles of its own
    (`response.json`, `response.client`)."""
    application = ClientHandler()

    def get() -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "testserver",
            "HTTP_COOKIE": cookie,
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
        }
        response = application(environ)
        assert response.status_code == 200

    get()
    gc.collect()
    for _ in range(requests):
        get()
    return gc.collect() / requests


def test_it_leaves_no_page_of_rows_to_the_cycle_collector(
    make_user: Callable[..., Any], make_team: Callable[..., Any], settings: Any, collector_off: None
) -> None:
    make_team("platform")
    for n in range(50):
        ToolFactory(name=f"tool-{n:02}", tags=["scm", "ci"], links=[{"url": "https://example.com/runbook"}])
    client = Client()
    client.force_login(make_user("reader"))
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"

    released = _cyclic_garbage_per_request(cookie, "/api/v1/tools/")
    settings.MIDDLEWARE = [name for name in django_settings.MIDDLEWARE if name != RELEASE]
    kept = _cyclic_garbage_per_request(cookie, "/api/v1/tools/")

    # Each of the 50 rows renders as a dict with several lists and dicts: all of them were cyclic garbage.
    assert kept > 500
    assert released < 200
