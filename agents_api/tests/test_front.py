"""The grant check in front of Django (agents_api.front) answers exactly what the DRF view answers, or lets it answer.

Each request goes both ways: through portal.wsgi's application (the front, then Django when it declines), called as
gunicorn calls it, and through Django's test client (the DRF view at the URL, never the front). Status and JSON must
be the same; the test also records which requests the front answered itself, so a front that declines everything
cannot pass.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from agents_api.front import MAX_BODY_BYTES, GrantCheckFront
from portal.tokens import token_issue
from portal.wsgi import django_application

pytestmark = pytest.mark.django_db

CHECK = "/api/v1/grants/check/"


class Recorder:
    """Django's WSGI application, counting the requests the front handed to it."""

    def __init__(self, app: Callable[..., Iterable[bytes]] = django_application) -> None:
        self.calls, self.app = 0, app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def django_app() -> Recorder:
    return Recorder()


@contextlib.contextmanager
def keeping_the_test_connection() -> Iterator[None]:
    """As Django's test client does around each request: the request must not close the connection that holds the
    test's transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def front(django_app: Recorder) -> GrantCheckFront:
    return GrantCheckFront(django_app)


@pytest.fixture
def secrets(make_user: Callable[..., Any], make_grant: Callable[..., Any]) -> dict[str, str]:
    make_grant(capabilities=["get_file", "list_issues"])
    user = make_user("gateway")
    return {
        scopes: token_issue(issued_by=user, name=scopes, scopes=scopes.split(","), expires_in_days=1).secret
        for scopes in ("read", "write")
    }


def through_wsgi(
    app: Callable[..., Iterable[bytes]],
    body: bytes,
    *,
    secret: str | None,
    query: str = "",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": CHECK,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_HOST": "testserver",
        "SERVER_NAME": "testserver",
        **(headers or {}),
    }
    if secret is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    setup_testing_defaults(environ)
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = int(status.split()[0]), dict(response_headers)

    with keeping_the_test_connection():
        content = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], content


def through_the_view(body: bytes, *, secret: str | None, query: str = "", **extra: Any) -> tuple[int, bytes]:
    client = APIClient()
    if secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.generic("POST", CHECK + (f"?{query}" if query else ""), body, **extra)
    return response.status_code, response.content


def both_ways(front: GrantCheckFront, body: Any, *, secret: str | None, query: str = "") -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, headers, content = through_wsgi(front, raw, secret=secret, query=query)
    view_status, view_content = through_the_view(raw, secret=secret, query=query, content_type="application/json")
    assert (status, json.loads(content)) == (view_status, json.loads(view_content)), raw
    assert headers["Content-Type"] == "application/json" and headers["X-Content-Type-Options"] == "nosniff"
    return status, json.loads(content)


def test_it_answers_well_formed_checks_itself_and_as_the_view_does(
    front: GrantCheckFront, django_app: Recorder, secrets: dict[str, str]
) -> None:
    read = secrets["read"]
    call = {"agent": "pr-reviewer", "tool": "github-mcp"}
    both_ways(front, {**call, "capability": "get_file"}, secret=read)  # a token seen first: the view verifies it
    handed = django_app.calls

    answers = [
        both_ways(front, {**call, "capability": "get_file"}, secret=read),
        both_ways(front, {**call, "capability": "delete_repo"}, secret=read, query="enforce=true"),
        both_ways(front, {**call, "capability": "delete_repo"}, secret=read, query="enforce=no&other=1"),
        both_ways(front, {**call, "capability": None, "environment": "staging"}, secret=read),
        both_ways(front, {"agent": "pr-reviewer", "tool": "ghost-mcp"}, secret=read),
        both_ways(front, {"agent": "PR-Reviewer", "tool": "GitHub-MCP", "capability": "list_issues"}, secret=read),
    ]

    assert django_app.calls == handed  # all six answered in front of Django
    assert [(status, answer["verdict"]) for status, answer in answers] == [
        (200, "allowed"),
        (403, "capability_not_granted"),
        (200, "capability_not_granted"),
        (200, "environment_not_granted"),
        (200, "no_grant"),
        (200, "allowed"),
    ]
    assert answers[0][1]["grant"] is not None and "ghost-mcp" in answers[4][1]["reason"]


def test_it_hands_every_other_request_to_the_view_with_its_body(
    front: GrantCheckFront, django_app: Recorder, secrets: dict[str, str]
) -> None:
    call = {"agent": "pr-reviewer", "tool": "github-mcp", "capability": "get_file"}
    both_ways(front, call, secret=secrets["read"])  # remembered from here on
    handed = django_app.calls
    cases: list[tuple[Any, str | None, int]] = [
        ({**call, "agent": ""}, secrets["read"], 400),  # blank: the serializer names the field
        ({**call, "agent": " pr-reviewer "}, secrets["read"], 200),  # the serializer trims it
        ({**call, "agent": "x" * 64}, secrets["read"], 400),  # over the serializer's length
        ({**call, "agent": "pr\x00reviewer"}, secrets["read"], 400),  # the serializer refuses NUL
        (b'{"agent": "pr-reviewer", "tool": "git\\ud800hub"}', secrets["read"], 400),  # and lone surrogates
        ({**call, "agent": 7}, secrets["read"], 200),  # not a string: DRF's reading, not ours
        ({**call, "extra": "field"}, secrets["read"], 200),
        ({"tool": "github-mcp"}, secrets["read"], 400),
        (b"{not json", secrets["read"], 400),
        (b"[]", secrets["read"], 400),
        (call, None, 401),
        (call, "ap_not-a-token", 401),
        (call, secrets["write"], 403),  # no read scope (and a token the view sees first)
    ]
    for body, secret, expected in cases:
        status, answer = both_ways(front, body, secret=secret)
        assert status == expected, (body, answer)
    assert django_app.calls == handed + len(cases)

    through_wsgi(front, json.dumps(call).encode(), secret=secrets["read"], headers={"HTTP_ACCEPT": "text/html"})
    assert django_app.calls == handed + len(cases) + 1  # another Accept: DRF negotiates it
    big = json.dumps({**call, "capability": "get_file" + " " * MAX_BODY_BYTES}).encode()
    through_wsgi(front, big, secret=secrets["read"])
    assert django_app.calls == handed + len(cases) + 2


def test_it_keeps_the_request_id_and_lets_other_methods_and_paths_through(
    front: GrantCheckFront, django_app: Recorder, secrets: dict[str, str]
) -> None:
    body = json.dumps({"agent": "pr-reviewer", "tool": "github-mcp"}).encode()
    through_wsgi(front, body, secret=secrets["read"])
    handed = django_app.calls
    status, headers, _ = through_wsgi(
        front, body, secret=secrets["read"], headers={"HTTP_X_REQUEST_ID": "gateway-call-0001"}
    )
    assert (status, headers["X-Request-ID"], django_app.calls) == (200, "gateway-call-0001", handed)

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": CHECK, "HTTP_HOST": "testserver"}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    with keeping_the_test_connection():
        b"".join(front(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses == ["401 Unauthorized"] and django_app.calls == handed + 1


def test_a_denial_answered_in_front_opens_its_finding(front: GrantCheckFront, secrets: dict[str, str]) -> None:
    from runtime.denials import denied_checks
    from runtime.models import Finding

    denied = {"agent": "pr-reviewer", "tool": "github-mcp", "capability": "delete_repo"}
    for _ in range(3):
        both_ways(front, denied, secret=secrets["read"])  # six checks: three each way
    denied_checks.flush()
    finding = Finding.objects.get()
    assert (finding.kind, finding.count) == ("capability_not_granted", 6)


names = st.one_of(
    st.sampled_from(["pr-reviewer", "github-mcp", "PR-Reviewer", "", " github-mcp", "get_file", "production"]),
    st.text(max_size=70),
    st.none(),
    st.integers(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.dictionaries(st.sampled_from(["agent", "tool", "capability", "environment", "other"]), names, max_size=5),
    enforce=st.sampled_from(["", "enforce=true", "enforce=0", "enforce=yes&enforce=no"]),
)
def test_any_body_gets_the_views_answer(
    front: GrantCheckFront, secrets: dict[str, str], body: dict[str, Any], enforce: str
) -> None:
    both_ways(front, body, secret=secrets["read"], query=enforce)


def test_it_finds_its_path_under_a_mount_point(django_app: Recorder) -> None:
    from django.urls import set_script_prefix

    set_script_prefix("/portal/")  # as Django's handler leaves it after a request under SCRIPT_NAME=/portal
    try:
        assert GrantCheckFront(django_app).path == CHECK  # PATH_INFO does not hold the mount point
    finally:
        set_script_prefix("/")


def test_a_host_or_scheme_django_refuses_is_the_views_to_answer(
    front: GrantCheckFront, django_app: Recorder, secrets: dict[str, str], settings: Any
) -> None:
    body = json.dumps({"agent": "pr-reviewer", "tool": "github-mcp"}).encode()
    through_wsgi(front, body, secret=secrets["read"])
    handed = django_app.calls

    status, _, _ = through_wsgi(front, body, secret=secrets["read"], headers={"HTTP_HOST": "evil.example"})
    assert (status, django_app.calls) == (400, handed + 1)  # DisallowedHost, as through the URL

    settings.SECURE_SSL_REDIRECT = True
    django = Recorder(WSGIHandler())  # its SecurityMiddleware reads the setting when it loads
    front = GrantCheckFront(django)
    status, headers, _ = through_wsgi(front, body, secret=secrets["read"])
    assert (status, django.calls) == (301, 1) and headers["Location"].startswith("https://")
    status, _, _ = through_wsgi(front, body, secret=secrets["read"], headers={"wsgi.url_scheme": "https"})
    assert (status, django.calls) == (200, 1)  # over HTTPS the front answers
