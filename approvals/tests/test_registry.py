from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from jsonschema import Draft7Validator
from rest_framework.test import APIClient

from approvals import decisions, submitting
from approvals.tests.conftest import READ_ONLY, TIER_FACTS
from catalog import services as catalog
from catalog.models import Tool
from portal.tokens import token_revoke

pytestmark = pytest.mark.django_db

SERVERS = "/v0.1/servers"
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
OFFICIAL = "io.modelcontextprotocol.registry/official"
_HEADERS = {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "isSecret": {"type": "boolean"}}}}  # fmt: skip
# The constraints of ServerResponse in the registry's OpenAPI (2025-12-11) that a client relies on.
SERVER_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["server", "_meta"],
    "properties": {
        "server": {
            "type": "object",
            "required": ["name", "description", "version"],
            "properties": {
                "$schema": {"const": SCHEMA_URL},
                "name": {"type": "string", "minLength": 3, "maxLength": 200, "pattern": "^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$"},
                "description": {"type": "string", "minLength": 1, "maxLength": 100},
                "title": {"type": "string", "minLength": 1, "maxLength": 100},
                "version": {"type": "string", "maxLength": 255, "not": {"pattern": r"^latest$|[\^~><=*]"}},
                "repository": {"type": "object", "required": ["url", "source"]},
                "websiteUrl": {"type": "string", "pattern": "^https?://"},
                "packages": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["registryType", "identifier", "transport"],
                        "properties": {
                            "registryType": {"type": "string"},
                            "identifier": {"type": "string"},
                            "version": {"type": "string", "minLength": 1, "not": {"const": "latest"}},
                            "runtimeHint": {"type": "string"},
                            "transport": {
                                "anyOf": [
                                    {"type": "object", "required": ["type"], "properties": {"type": {"const": "stdio"}}},
                                    {"type": "object", "required": ["type", "url"], "properties": {"type": {"enum": ["streamable-http", "sse"]}}},
                                ]
                            },
                        },
                    },
                },
                "remotes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "url"],
                        "properties": {
                            "type": {"enum": ["streamable-http", "sse"]},
                            "url": {"type": "string", "pattern": r"^https?://\S+$"},
                            "headers": _HEADERS,
                        },
                    },
                },
            },
        },
        "_meta": {
            "type": "object",
            "required": [OFFICIAL],
            "properties": {
                OFFICIAL: {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["status", "publishedAt", "updatedAt", "isLatest"],
                    "properties": {
                        "status": {"enum": ["active", "deprecated", "deleted"]},
                        "publishedAt": {"type": "string"},
                        "updatedAt": {"type": "string"},
                        "isLatest": {"type": "boolean"},
                    },
                }
            },
        },
    },
}  # fmt: skip


@pytest.fixture
def make_server(world: dict[str, Any]) -> Callable[..., Tool]:
    """An MCP server in the catalog, by default approved."""

    def make(name: str, *, status: str = "approved", **extra: Any) -> Tool:
        data: dict[str, Any] = {
            "name": name,
            "owner": "payments",
            "kind": "mcp_server",
            "version": "1.0.0",
            "description": f"Tools of {name}.",
            "transport": "streamable_http",
            "endpoint_url": f"https://{name}.example.com/mcp",
            "capabilities": READ_ONLY,
            **TIER_FACTS["medium"],
            **extra,
        }
        tool = catalog.tool_create(actor=world["owner"], data=data)
        if status != tool.status:
            tool = catalog.tool_set_status(tool=tool, status=status)
        return tool

    return make


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.json()
    return [entry["server"]["name"] for entry in response.json()["servers"]]


def test_it_serves_only_approved_mcp_servers(make_server: Callable[..., Tool]) -> None:
    make_server("weather", registry_name="io.github.acme/weather")
    make_server("files-mcp")
    for status in ("draft", "pending_review", "rejected", "deprecated"):
        make_server(f"{status.replace('_', '-')}-mcp", status=status)
    make_server("approved-cli", kind="cli", transport="", endpoint_url="")

    response = APIClient().get(SERVERS)

    assert sorted(names(response)) == ["io.github.acme/weather", "local.agent-portal/files-mcp"]
    assert response.json()["metadata"] == {"count": 2}


def test_each_entry_has_the_required_server_json_fields(make_server: Callable[..., Tool]) -> None:
    make_server(
        "weather",
        registry_name="io.github.acme/weather",
        title="Weather",
        description=("Forecasts and warnings for any place on earth, hourly and daily. " * 5) + "\n\nMore below.",
        repository_url="https://github.com/acme/weather-mcp",
        links=[{"url": "https://weather.example.com", "title": "Website"}],
        packages=[{"registry_type": "npm", "identifier": "@acme/weather-mcp", "version": "1.0.0",
                   "transport": "stdio", "runtime_hint": "npx"}],
        remotes=[{"type": "streamable-http", "url": "https://weather.example.com/mcp", "headers": ["X-Api-Key"]}],
        secrets=["X-Api-Key"],
    )  # fmt: skip
    make_server("files-mcp", description="", title="", transport="sse", endpoint_url="https://files.example.com/sse")
    make_server(
        "local-mcp", transport="stdio", endpoint_url="", packages=[{"registryType": "pypi", "identifier": "local-mcp"}]
    )

    entries = APIClient().get(SERVERS).json()["servers"]

    validator = Draft7Validator(SERVER_RESPONSE_SCHEMA)
    for entry in entries:
        assert not list(validator.iter_errors(entry)), [error.message for error in validator.iter_errors(entry)]
        official = entry["_meta"][OFFICIAL]
        assert (official["status"], official["isLatest"]) == ("active", True)
        assert datetime.fromisoformat(official["updatedAt"]) >= datetime.fromisoformat(official["publishedAt"])
        assert entry["server"]["$schema"] == SCHEMA_URL
    weather, files, local = (entry["server"] for entry in sorted(entries, key=lambda e: e["server"]["name"]))
    assert weather["name"] == "io.github.acme/weather"
    assert len(weather["description"]) == 100
    assert weather["description"].startswith("Forecasts and warnings")
    assert weather["description"].endswith("…")
    assert (weather["title"], weather["version"]) == ("Weather", "1.0.0")
    assert weather["repository"] == {"url": "https://github.com/acme/weather-mcp", "source": "github"}
    assert weather["websiteUrl"] == "https://weather.example.com"
    assert weather["packages"] == [
        {"registryType": "npm", "identifier": "@acme/weather-mcp", "version": "1.0.0", "runtimeHint": "npx",
         "transport": {"type": "stdio"}}
    ]  # fmt: skip
    assert weather["remotes"] == [
        {"type": "streamable-http", "url": "https://weather.example.com/mcp", "headers": [{"name": "X-Api-Key", "isSecret": True}]}
    ]  # fmt: skip
    assert (files["description"], files["remotes"]) == (
        "files-mcp",
        [{"type": "sse", "url": "https://files.example.com/sse"}],
    )
    assert "title" not in files
    assert (local["packages"], "remotes" in local) == ([{"registryType": "pypi", "identifier": "local-mcp", "transport": {"type": "stdio"}}], False)  # fmt: skip


def test_it_searches_server_names_by_substring(make_server: Callable[..., Tool]) -> None:
    make_server("weather", registry_name="io.github.acme/weather")
    make_server("weather-alerts")
    make_server("files-mcp")

    assert names(APIClient().get(SERVERS, {"search": "WEATH"})) == [
        "io.github.acme/weather",
        "local.agent-portal/weather-alerts",
    ]
    assert names(APIClient().get(SERVERS, {"search": "acme/"})) == ["io.github.acme/weather"]
    assert names(APIClient().get(SERVERS, {"search": "nothing-like-it"})) == []


def test_it_walks_every_page_once_with_limit_and_cursor(make_server: Callable[..., Tool]) -> None:
    for number in range(7):
        make_server(f"server-{number}")
    # Equal timestamps: the id breaks the tie, so no server is skipped or repeated at a page boundary.
    Tool.objects.filter(name__in=["server-2", "server-3", "server-4"]).update(updated_at=timezone.now())
    seen: list[str] = []
    pages = []
    query: dict[str, Any] = {"limit": 3}

    while True:
        response = APIClient().get(SERVERS, query)
        page = names(response)
        seen += page
        pages.append(len(page))
        metadata = response.json()["metadata"]
        assert metadata["count"] == len(page)
        if "nextCursor" not in metadata:
            break
        query = {"limit": 3, "cursor": metadata["nextCursor"]}

    assert pages == [3, 3, 1]
    assert sorted(seen) == sorted(f"local.agent-portal/server-{number}" for number in range(7))
    assert len(set(seen)) == len(seen)
    assert names(APIClient().get(SERVERS)) == seen


def test_it_filters_by_updated_since(make_server: Callable[..., Tool]) -> None:
    now = timezone.now()
    for number, age in enumerate((30, 10, 1)):
        tool = make_server(f"server-{number}")
        Tool.objects.filter(pk=tool.pk).update(updated_at=now - timedelta(days=age))
    since = now - timedelta(days=10)

    utc = names(APIClient().get(SERVERS, {"updated_since": since.isoformat().replace("+00:00", "Z")}))
    offset = names(
        APIClient().get(SERVERS, {"updated_since": since.astimezone(timezone.get_fixed_timezone(120)).isoformat()})
    )

    assert utc == offset == ["local.agent-portal/server-1", "local.agent-portal/server-2"]
    entry = APIClient().get(SERVERS, {"updated_since": (now - timedelta(days=2)).isoformat()}).json()["servers"]
    assert datetime.fromisoformat(entry[0]["_meta"][OFFICIAL]["updatedAt"]) == now - timedelta(days=1)


def test_it_filters_by_version(make_server: Callable[..., Tool]) -> None:
    make_server("server-1", version="1.0.0")
    make_server("server-2", version="2.0.0")

    assert len(names(APIClient().get(SERVERS, {"version": "latest"}))) == 2
    assert names(APIClient().get(SERVERS, {"version": "2.0.0"})) == ["local.agent-portal/server-2"]
    assert names(APIClient().get(SERVERS, {"version": "3.0.0"})) == []


def test_it_serves_one_server_by_its_url_encoded_name_and_version(make_server: Callable[..., Tool]) -> None:
    make_server("weather", registry_name="io.github.acme/weather", version="1.2.0+build.5")
    make_server("files-mcp")
    client = APIClient()

    exact = client.get(f"{SERVERS}/io.github.acme%2Fweather/versions/1.2.0%2Bbuild.5")
    latest = client.get(f"{SERVERS}/io.github.acme%2Fweather/versions/latest")
    derived = client.get(f"{SERVERS}/local.agent-portal%2Ffiles-mcp/versions/latest")
    other_version = client.get(f"{SERVERS}/io.github.acme%2Fweather/versions/1.1.0")
    versions = client.get(f"{SERVERS}/io.github.acme%2Fweather/versions")

    assert exact.status_code == latest.status_code == derived.status_code == 200
    assert exact.json() == latest.json()
    assert (exact.json()["server"]["name"], exact.json()["server"]["version"]) == (
        "io.github.acme/weather",
        "1.2.0+build.5",
    )
    assert not list(Draft7Validator(SERVER_RESPONSE_SCHEMA).iter_errors(exact.json()))
    assert derived.json()["server"]["name"] == "local.agent-portal/files-mcp"
    assert other_version.status_code == 404
    assert versions.json() == {"servers": [exact.json()], "metadata": {"count": 1}}


def test_it_answers_404_for_servers_that_are_not_approved(make_server: Callable[..., Tool]) -> None:
    make_server("pending-mcp", status="pending_review", registry_name="io.github.acme/pending")
    make_server("rejected-mcp", status="rejected")
    make_server("approved-cli", kind="cli", transport="", endpoint_url="")

    for name in ("io.github.acme%2Fpending", "local.agent-portal%2Frejected-mcp", "local.agent-portal%2Fapproved-cli",
                 "io.github.acme%2Fnobody", "no-slash"):  # fmt: skip
        for path in (f"{SERVERS}/{name}/versions/latest", f"{SERVERS}/{name}/versions"):
            response = APIClient().get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"


def test_it_answers_400_naming_the_bad_parameter(make_server: Callable[..., Tool]) -> None:
    make_server("weather")
    forged = base64.urlsafe_b64encode(b'{"not": "a cursor"}').decode()
    naive = base64.urlsafe_b64encode(b'["2025-01-01T00:00:00", 1]').decode()

    for query, parameter in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "%%%not-base64"}, "cursor"),
        ({"cursor": forged}, "cursor"),
        ({"cursor": naive}, "cursor"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "2025-13-01T00:00:00Z"}, "updated_since"),
    ):
        response = APIClient().get(SERVERS, query)
        assert response.status_code == 400, query
        assert list(response.json()["error"]["fields"]) == [parameter], query


def test_it_needs_a_read_token_when_the_registry_is_not_public(
    settings: Any, world: dict[str, Any], token_client: Callable[..., APIClient], make_server: Callable[..., Tool]
) -> None:
    make_server("weather")
    revoked = token_client(world["member"], scopes=["read"])
    token_revoke(token=revoked.token, revoked_by=world["member"])
    assert revoked.get(SERVERS).status_code == 401

    settings.MCP_REGISTRY_PUBLIC = False

    assert APIClient().get(SERVERS).status_code == 401
    assert APIClient().get(f"{SERVERS}/local.agent-portal%2Fweather/versions/latest").status_code == 401
    assert token_client(world["member"], scopes=["write"]).get(SERVERS).status_code == 403
    assert names(token_client(world["member"], scopes=["read"]).get(SERVERS)) == ["local.agent-portal/weather"]


def test_it_names_servers_under_the_sites_domain_or_the_configured_namespace(
    settings: Any, make_server: Callable[..., Tool]
) -> None:
    make_server("weather")

    settings.SITE_URL = "https://portal.example.com"
    from_site = names(APIClient().get(SERVERS))
    settings.MCP_REGISTRY_NAMESPACE = "com.example.ai"
    configured = APIClient().get(f"{SERVERS}/com.example.ai%2Fweather/versions/latest")

    assert from_site == ["com.example.portal/weather"]
    assert configured.status_code == 200


def test_it_lists_with_a_constant_number_of_queries(
    make_server: Callable[..., Tool], django_assert_max_num_queries: Any
) -> None:
    for number in range(20):
        make_server(f"server-{number}")

    with django_assert_max_num_queries(2):
        assert len(names(APIClient().get(SERVERS, {"limit": 100}))) == 20


@pytest.mark.usefixtures("eager_celery")
def test_an_mcp_server_appears_once_its_onboarding_is_approved(
    world: dict[str, Any], make_server: Callable[..., Tool], django_capture_on_commit_callbacks: Any
) -> None:
    tool = make_server(
        "stdio-mcp",
        status="draft",
        transport="stdio",
        endpoint_url="",
        packages=[{"registry_type": "npm", "identifier": "@acme/stdio-mcp", "version": "1.0.0", "transport": "stdio"}],
    )
    catalog.tool_attest_annotations(tool=tool)
    with django_capture_on_commit_callbacks(execute=True):
        request = submitting.request_submit(actor=world["owner"], kind="tool_onboarding", tool=tool)
    request.refresh_from_db()
    assert request.state == "in_review", [(c.name, c.status, c.summary) for c in request.checks.all()]
    assert names(APIClient().get(SERVERS)) == []

    with django_capture_on_commit_callbacks(execute=True):
        decisions.request_decide(actor=world["reviewer"], request_id=request.pk, outcome="approve")

    assert names(APIClient().get(SERVERS)) == ["local.agent-portal/stdio-mcp"]
