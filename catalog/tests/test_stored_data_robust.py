"""Nested writable fields are validated whole on PATCH too, and one malformed stored row cannot take down a list,
a page or the export for everyone (issue 13, item 1)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Agent, Tool

pytestmark = pytest.mark.django_db

AGENTS = "/api/v1/agents/"
TOOLS = "/api/v1/tools/"


@pytest.fixture
def owner(make_user: Any, make_team: Any) -> Any:
    alice = make_user("alice")
    make_team("payments", maintainers=[alice])
    return alice


@pytest.fixture
def client(owner: Any, token_client: Any) -> APIClient:
    return token_client(owner, scopes=["read", "write"])


@pytest.fixture
def agent(owner: Any) -> Agent:
    return services.agent_create(
        actor=owner,
        data={
            "name": "helper",
            "owner": "payments",
            "description": "Helps.",
            "skills": [{"id": "triage", "name": "Triage", "tags": ["ops"]}],
            "links": [{"url": "https://example.com/runbook", "title": "Runbook"}],
        },
    )


@pytest.fixture
def tool(owner: Any) -> Tool:
    return services.tool_create(
        actor=owner,
        data={
            "name": "stock-api",
            "owner": "payments",
            "kind": "cli",
            "capabilities": [{"name": "list_items", "read_only": True}],
            "packages": [{"registryType": "npm", "identifier": "stock-api", "version": "1.0.0"}],
        },
    )


PARTIAL_NESTED = [
    (AGENTS, "helper", {"skills": [{"name": "x"}]}, "skills"),
    (AGENTS, "helper", {"skills": [{"id": "ok"}, {"description": "no id"}]}, "skills"),
    (AGENTS, "helper", {"links": [{"title": "no url"}]}, "links"),
    (TOOLS, "stock-api", {"capabilities": [{"description": "no name"}]}, "capabilities"),
    (TOOLS, "stock-api", {"links": [{"title": "no url"}]}, "links"),
    (TOOLS, "stock-api", {"packages": ["not an object"]}, "packages"),
    (TOOLS, "stock-api", {"remotes": [5]}, "remotes"),
    (TOOLS, "stock-api", {"secrets": [{"name": "X"}]}, "secrets"),
]


@pytest.mark.parametrize(("base", "name", "body", "field"), PARTIAL_NESTED)
def test_a_patch_with_an_incomplete_nested_item_is_refused_whole_naming_the_field(
    client: APIClient, agent: Agent, tool: Tool, base: str, name: str, body: dict[str, Any], field: str
) -> None:
    before = client.get(f"{base}{name}/").json()

    response = client.patch(f"{base}{name}/", body, format="json")

    assert response.status_code == 400, response.content
    assert any(key == field or key.startswith(f"{field}[") for key in response.json()["error"]["fields"])
    assert client.get(f"{base}{name}/").json() == before
    assert client.get(base).status_code == 200


def test_a_patch_with_complete_nested_items_is_accepted(client: APIClient, agent: Agent) -> None:
    response = client.patch(f"{AGENTS}helper/", {"skills": [{"id": "summarise"}]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["skills"] == [{"id": "summarise", "name": "", "description": "", "tags": []}]


def _corrupt_agent(agent: Agent) -> None:
    """What the outside test did through a PATCH the API then accepted: rows written around the API."""
    Agent.objects.filter(pk=agent.pk).update(
        skills=[{"name": "no id"}, "not an object", {"id": "triage", "tags": 5}, {"id": "kept", "name": "Kept"}],
        links=[{"title": "no url"}, {"url": "https://example.com/ok", "title": "OK"}, None],
        tags=["ok", 5, None],
        annotations=["not", "a", "mapping"],
        environments="production",
    )


def test_one_malformed_stored_agent_does_not_fail_the_list_the_detail_the_page_or_the_export(
    client: APIClient, agent: Agent, tool: Tool, make_user: Any, caplog: Any
) -> None:
    _corrupt_agent(agent)
    Tool.objects.filter(pk=tool.pk).update(packages=["not an object", {"registryType": "npm"}], remotes="not a list")

    listed = client.get(AGENTS)
    detail = client.get(f"{AGENTS}helper/")
    tools = client.get(TOOLS)
    tool_detail = client.get(f"{TOOLS}stock-api/")
    export = client.get("/api/v1/export/backstage", HTTP_ACCEPT="application/yaml")
    browser = APIClient()
    browser.force_login(make_user("bob"))
    pages = [browser.get(url) for url in ("/catalog/agents/helper/", "/catalog/tools/stock-api/", "/catalog/")]

    assert [r.status_code for r in (listed, detail, tools, tool_detail, export, *pages)] == [200] * 8
    body = detail.json()
    assert body["skills"] == [
        {"id": "triage", "name": "", "description": "", "tags": []},
        {"id": "kept", "name": "Kept", "description": "", "tags": []},
    ]
    assert body["links"] == [{"url": "https://example.com/ok", "title": "OK"}]
    assert body["annotations"] == {}
    assert body["environments"] == []
    assert listed.json()["results"][0]["skills"] == body["skills"]
    assert tool_detail.json()["packages"] == [{"registryType": "npm"}]
    assert tool_detail.json()["remotes"] == []
    documents = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(export.content) if doc}
    assert "helper" in documents and "stock-api" in documents
    assert "triage" in documents["helper"]["metadata"]["annotations"]["agentportal.io/skills"]
    assert "malformed stored" in caplog.text
