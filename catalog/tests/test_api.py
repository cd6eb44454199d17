"""The catalog REST API under /api/v1/: thin views over catalog.services and catalog.selectors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Agent, Location, Team, Tool, ToolGrant
from portal.roles import PLATFORM_ADMIN

pytestmark = pytest.mark.django_db

AGENTS = "/api/v1/agents/"
TOOLS = "/api/v1/tools/"
GRANTS = "/api/v1/grants/"

BACKSTAGE_YAML = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: imported-team
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: triage-agent
  description: Triages incoming issues.
  labels:
    agentportal.io/agent-type: sre
    agentportal.io/autonomy-level: "2"
    agentportal.io/human-in-loop: per_action
  annotations:
    agentportal.io/data-class: internal
spec:
  type: ai-agent
  lifecycle: production
  owner: group:imported-team
  consumesApis: [api:issues-mcp]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: issues-mcp
  description: Reads the issue tracker.
  labels:
    agentportal.io/reach: closed
    agentportal.io/credential-scope: delegated
    agentportal.io/data-class: internal
  annotations:
    agentportal.io/capabilities: '[{"name":"list_issues","annotations":{"readOnlyHint":true}}]'
spec:
  type: mcp-server
  lifecycle: experimental
  owner: imported-team
"""

YAML_BOMB = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: bomb-agent
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]
spec:
  type: ai-agent
  lifecycle: production
  owner: platform-ai
"""


@pytest.fixture
def alice(make_user: Callable[..., Any]) -> Any:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Callable[..., Any]) -> Any:
    return make_user("bob")


@pytest.fixture
def platform_team(make_team: Callable[..., Any], alice: Any) -> Team:
    return make_team("platform-ai", maintainers=[alice])


@pytest.fixture
def other_team(make_team: Callable[..., Any], bob: Any) -> Team:
    return make_team("payments", maintainers=[bob])


@pytest.fixture
def as_alice(alice: Any, platform_team: Team) -> APIClient:
    client = APIClient()
    client.force_login(alice)
    return client


@pytest.fixture
def as_bob(bob: Any, other_team: Team) -> APIClient:
    client = APIClient()
    client.force_login(bob)
    return client


@pytest.fixture
def as_admin(make_user: Callable[..., Any]) -> APIClient:
    client = APIClient()
    client.force_login(make_user("ada", roles=[PLATFORM_ADMIN]))
    return client


def make_agent(owner: Team, name: str = "release-notes-agent", **data: Any) -> Agent:
    defaults = {
        "title": "Release notes agent",
        "description": "Drafts release notes.",
        "lifecycle": "production",
        "agent_type": "coding",
        "autonomy_level": 2,
        "human_in_loop": "per_action",
        "data_class": "internal",
        "tags": ["release"],
    }
    return services.agent_create(actor=None, data={"name": name, "owner": owner.name, **defaults, **data})


def make_tool(owner: Team, name: str = "github-mcp", **data: Any) -> Tool:
    defaults = {
        "kind": "mcp_server",
        "transport": "streamable_http",
        "reach": "closed",
        "credential_scope": "delegated",
        "data_class": "internal",
        "capabilities": [{"name": "get_file", "read_only": True}, {"name": "create_issue", "destructive": False}],
        "secrets": ["GITHUB_TOKEN"],
    }
    return services.tool_create(actor=None, data={"name": name, "owner": owner.name, **defaults, **data})


def error_fields(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]["fields"]


# --- agents ------------------------------------------------------------------------------------------------


def test_it_creates_reads_updates_and_deletes_an_agent_as_an_owner_maintainer(as_alice: APIClient) -> None:
    make_tool(Team.objects.get(name="platform-ai"))
    created = as_alice.post(
        AGENTS,
        {
            "name": "triage-agent",
            "owner": "platform-ai",
            "title": "Triage",
            "description": "Sorts **issues**.",
            "agent_type": "sre",
            "autonomy_level": 3,
            "human_in_loop": "sampled",
            "data_class": "internal",
            "runtime": "kubernetes",
            "tools": ["github-mcp"],
            "tags": ["ops"],
            "links": [{"url": "https://grafana.example/d/triage", "title": "Dashboard"}],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["owner"] == "platform-ai"
    assert body["tools"] == ["github-mcp"]
    assert body["status"] == "draft"
    assert body["grants"] == []
    assert body["risk"]["tier"] == Agent.objects.get(name="triage-agent").risk_tier

    detail = as_alice.get(f"{AGENTS}triage-agent/")
    assert detail.status_code == 200
    assert detail.json()["links"] == [{"url": "https://grafana.example/d/triage", "title": "Dashboard"}]

    patched = as_alice.patch(f"{AGENTS}triage-agent/", {"title": "Issue triage"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["title"] == "Issue triage"
    assert patched.json()["autonomy_level"] == 3

    replaced = as_alice.put(f"{AGENTS}triage-agent/", {"name": "triage-agent", "owner": "platform-ai"}, format="json")
    assert replaced.status_code == 200, replaced.json()
    assert replaced.json()["title"] == ""
    assert replaced.json()["autonomy_level"] is None
    assert replaced.json()["tools"] == []

    assert as_alice.delete(f"{AGENTS}triage-agent/").status_code == 204
    assert not Agent.objects.filter(name="triage-agent").exists()
    assert as_alice.get(f"{AGENTS}triage-agent/").status_code == 404


def test_it_refuses_agent_edits_from_another_team(as_bob: APIClient, platform_team: Team) -> None:
    make_agent(platform_team, title="Original")

    patched = as_bob.patch(f"{AGENTS}release-notes-agent/", {"title": "Hijacked"}, format="json")
    assert patched.status_code == 403
    assert patched.json()["error"]["code"] == "permission_denied"
    assert "platform-ai" in patched.json()["error"]["message"]
    assert as_bob.delete(f"{AGENTS}release-notes-agent/").status_code == 403

    agent = Agent.objects.get(name="release-notes-agent")
    assert agent.title == "Original"
    assert as_bob.get(f"{AGENTS}release-notes-agent/").json()["title"] == "Original"


def test_it_refuses_to_create_an_agent_for_a_team_one_does_not_maintain(as_bob: APIClient, platform_team: Team) -> None:
    response = as_bob.post(AGENTS, {"name": "sneaky-agent", "owner": "platform-ai"}, format="json")

    assert response.status_code == 403
    assert not Agent.objects.filter(name="sneaky-agent").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"owner": "no-such-team"}, "owner"),
        ({"name": "Not_A_DNS_Label"}, "name"),
        ({"description": "Hello <script>alert(1)</script>"}, "description"),
        ({"autonomy_level": 9}, "autonomy_level"),
        ({"name": "release-notes-agent"}, "name"),
        ({"lifecycle": "forever"}, "lifecycle"),
    ],
)
def test_it_answers_bad_agent_input_with_400_naming_the_field(
    as_alice: APIClient, platform_team: Team, change: dict[str, Any], field: str
) -> None:
    make_agent(platform_team)
    before = Agent.objects.count()

    response = as_alice.post(AGENTS, {"name": "new-agent", "owner": "platform-ai", **change}, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "invalid"
    assert field in error_fields(response)
    assert Agent.objects.count() == before


def test_it_refuses_to_rename_an_agent(as_alice: APIClient, platform_team: Team) -> None:
    make_agent(platform_team)

    response = as_alice.patch(f"{AGENTS}release-notes-agent/", {"name": "renamed-agent"}, format="json")

    assert response.status_code == 400
    assert "name" in error_fields(response)


def test_it_shows_risk_in_list_and_detail_and_rescores_when_a_fact_changes(
    as_alice: APIClient, platform_team: Team
) -> None:
    make_agent(platform_team, data_class="public", autonomy_level=4)

    listed = as_alice.get(AGENTS).json()["results"][0]["risk"]
    detail = as_alice.get(f"{AGENTS}release-notes-agent/").json()["risk"]
    assert listed == detail
    assert set(detail) >= {"tier", "score", "factors", "floors", "rubric_version", "explanation"}
    assert {factor["code"] for factor in detail["factors"]} == {"D", "W", "E", "A", "H", "C"}
    assert all(set(factor) == {"code", "points", "label"} for factor in detail["factors"])
    assert detail["tier"] == "low"

    patched = as_alice.patch(f"{AGENTS}release-notes-agent/", {"data_class": "restricted"}, format="json")

    assert patched.status_code == 200
    risk = patched.json()["risk"]
    assert risk["score"] > detail["score"]
    assert risk["tier"] == "medium"
    data_factor = next(factor for factor in risk["factors"] if factor["code"] == "D")
    assert data_factor["points"] == 3
    assert as_alice.get(AGENTS).json()["results"][0]["risk"] == risk


def test_it_filters_and_searches_agents(as_alice: APIClient, platform_team: Team, other_team: Team) -> None:
    make_agent(platform_team, "release-notes-agent", tags=["release", "python"])
    make_agent(other_team, "invoice-agent", title="Invoices", description="Matches invoices to orders.", tags=[])
    make_agent(platform_team, "wild-agent", autonomy_level=None, lifecycle="experimental", agent_type="other")

    def names(query: str) -> list[str]:
        response = as_alice.get(f"{AGENTS}?{query}")
        assert response.status_code == 200, response.json()
        return [row["name"] for row in response.json()["results"]]

    assert names("owner=payments") == ["invoice-agent"]
    assert names("lifecycle=experimental") == ["wild-agent"]
    assert names("agent_type=coding") == ["invoice-agent", "release-notes-agent"]
    assert names("autonomy_level=unknown") == ["wild-agent"]
    assert names("autonomy_level=2") == ["invoice-agent", "release-notes-agent"]
    assert names("data_class=internal&owner=platform-ai") == ["release-notes-agent", "wild-agent"]
    assert names("tag=python") == ["release-notes-agent"]
    assert names("q=invoices orders") == ["invoice-agent"]
    assert names("q=INVOICE") == ["invoice-agent"]
    wild_tier = Agent.objects.get(name="wild-agent").risk_tier
    assert "wild-agent" in names(f"risk_tier={wild_tier}")
    assert names("status=draft") == ["invoice-agent", "release-notes-agent", "wild-agent"]
    assert names("page_size=1&page=2") == ["release-notes-agent"]

    bad = as_alice.get(f"{AGENTS}?risk_tier=extreme")
    assert bad.status_code == 400
    assert "risk_tier" in error_fields(bad)


# --- tools -------------------------------------------------------------------------------------------------


def test_it_creates_reads_updates_and_deletes_a_tool_as_an_owner_maintainer(as_alice: APIClient) -> None:
    created = as_alice.post(
        TOOLS,
        {
            "name": "warehouse-mcp",
            "owner": "platform-ai",
            "kind": "mcp_server",
            "transport": "stdio",
            "reach": "allowlisted",
            "credential_scope": "shared",
            "data_class": "confidential",
            "capabilities": [
                {"name": "query", "description": "Run SQL", "read_only": True},
                {"name": "drop_table", "destructive": True},
            ],
            "secrets": ["WAREHOUSE_DSN"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["owner"] == "platform-ai"
    assert body["secrets"] == ["WAREHOUSE_DSN"]
    assert body["annotations_trusted"] is False
    assert len(body["capabilities_hash"]) == 64
    assert body["capabilities"] == [
        {"name": "drop_table", "description": "", "read_only": None, "destructive": True, "idempotent": None,
         "open_world": None},
        {"name": "query", "description": "Run SQL", "read_only": True, "destructive": None, "idempotent": None,
         "open_world": None},
    ]  # fmt: skip
    assert body["risk"]["tier"] in {"high", "critical"}
    assert body["status"] == "draft"

    patched = as_alice.patch(
        f"{TOOLS}warehouse-mcp/", {"capabilities": [{"name": "query", "read_only": True}]}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    assert [cap["name"] for cap in patched.json()["capabilities"]] == ["query"]
    assert patched.json()["capabilities_hash"] != body["capabilities_hash"]
    assert patched.json()["secrets"] == ["WAREHOUSE_DSN"]

    assert as_alice.delete(f"{TOOLS}warehouse-mcp/").status_code == 204
    assert not Tool.objects.filter(name="warehouse-mcp").exists()


def test_it_refuses_tool_edits_from_another_team(as_bob: APIClient, platform_team: Team) -> None:
    make_tool(platform_team)

    assert as_bob.patch(f"{TOOLS}github-mcp/", {"reach": "open_world"}, format="json").status_code == 403
    assert as_bob.delete(f"{TOOLS}github-mcp/").status_code == 403

    tool = Tool.objects.get(name="github-mcp")
    assert tool.reach == "closed"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"owner": "no-such-team"}, "owner"),
        ({"name": "-bad-"}, "name"),
        ({"description": '<img src=x onerror="alert(1)">'}, "description"),
        ({"name": "github-mcp"}, "name"),
        ({"secrets": ["ghp_abc def"]}, "secrets"),
        ({"capabilities": [{"name": "a"}, {"name": "a"}]}, "capabilities[1].name"),
        ({"reach": "everywhere"}, "reach"),
    ],
)
def test_it_answers_bad_tool_input_with_400_naming_the_field(
    as_alice: APIClient, platform_team: Team, change: dict[str, Any], field: str
) -> None:
    make_tool(platform_team)

    response = as_alice.post(TOOLS, {"name": "new-tool", "owner": "platform-ai", **change}, format="json")

    assert response.status_code == 400, response.json()
    assert field in error_fields(response)
    assert Tool.objects.count() == 1


def test_it_filters_and_searches_tools(as_alice: APIClient, platform_team: Team, other_team: Team) -> None:
    make_tool(platform_team, "github-mcp", tags=["scm"])
    make_tool(other_team, "billing-api", kind="http_api", transport="http", description="Charges customers.")

    def names(query: str) -> list[str]:
        return [row["name"] for row in as_alice.get(f"{TOOLS}?{query}").json()["results"]]

    assert names("kind=http_api") == ["billing-api"]
    assert names("transport=streamable_http") == ["github-mcp"]
    assert names("owner=platform-ai") == ["github-mcp"]
    assert names("tag=scm") == ["github-mcp"]
    assert names("q=customers") == ["billing-api"]
    assert names("status=draft&data_class=internal") == ["billing-api", "github-mcp"]
    assert names("data_class=unknown") == []


def test_it_refuses_to_delete_a_tool_with_open_grants(as_alice: APIClient, platform_team: Team) -> None:
    tool = make_tool(platform_team)
    services.grant_request(actor=None, agent=make_agent(platform_team), tool=tool)

    response = as_alice.delete(f"{TOOLS}github-mcp/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Tool.objects.filter(pk=tool.pk).exists()


# --- authentication and token scopes -----------------------------------------------------------------------


def test_it_requires_credentials(api_client: APIClient, platform_team: Team) -> None:
    make_agent(platform_team)

    for url in (AGENTS, f"{AGENTS}release-notes-agent/", TOOLS, GRANTS, "/api/v1/export/backstage"):
        response = api_client.get(url)
        assert response.status_code == 401, url
        assert response.json()["error"]["code"] == "not_authenticated"
    assert api_client.post(AGENTS, {"name": "x", "owner": "platform-ai"}, format="json").status_code == 401


def test_it_lets_a_read_token_read_but_not_write(
    token_client: Callable[..., Any], alice: Any, platform_team: Team
) -> None:
    make_agent(platform_team)
    client = token_client(alice, scopes=["read"])

    assert client.get(AGENTS).status_code == 200
    response = client.post(AGENTS, {"name": "token-agent", "owner": "platform-ai"}, format="json")
    assert response.status_code == 403
    assert "'write' scope" in response.json()["error"]["message"]
    assert client.patch(f"{AGENTS}release-notes-agent/", {"title": "x"}, format="json").status_code == 403
    assert not Agent.objects.filter(name="token-agent").exists()


def test_it_lets_a_write_token_of_a_maintainer_write(
    token_client: Callable[..., Any], alice: Any, platform_team: Team
) -> None:
    client = token_client(alice, scopes=["read", "write"])

    response = client.post(AGENTS, {"name": "token-agent", "owner": "platform-ai"}, format="json")

    assert response.status_code == 201, response.json()


# --- grants ------------------------------------------------------------------------------------------------


def test_it_requests_a_grant_and_lists_it(as_alice: APIClient, platform_team: Team, other_team: Team) -> None:
    make_agent(platform_team)
    make_tool(other_team, "billing-api", kind="http_api")

    response = as_alice.post(
        GRANTS,
        {"agent": "release-notes-agent", "tool": "billing-api", "environment": "staging"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    grant = response.json()
    assert grant["status"] == "requested"
    assert grant["requested_by"] == "alice"
    assert grant["risk"]["tier"] in {"low", "medium", "high", "critical"}
    assert grant["risk"]["factors"]

    again = as_alice.post(
        GRANTS, {"agent": "release-notes-agent", "tool": "billing-api", "environment": "staging"}, format="json"
    )
    assert again.status_code == 200
    assert again.json()["id"] == grant["id"]

    listed = as_alice.get(f"{GRANTS}?agent=release-notes-agent&status=requested").json()
    assert [(g["agent"], g["tool"], g["environment"]) for g in listed["results"]] == [
        ("release-notes-agent", "billing-api", "staging")
    ]
    assert as_alice.get(f"{GRANTS}?tool=github-mcp").json()["count"] == 0
    assert as_alice.get(f"{GRANTS}{grant['id']}/").json()["id"] == grant["id"]

    summary = as_alice.get(f"{AGENTS}release-notes-agent/").json()["grants"]
    assert summary == [
        {
            "id": grant["id"],
            "tool": "billing-api",
            "environment": "staging",
            "capability_names": [],
            "status": "requested",
            "expires_at": None,
            "risk_tier": grant["risk"]["tier"],
        }
    ]
    assert as_alice.get(f"{TOOLS}billing-api/").json()["grants"][0]["agent"] == "release-notes-agent"


def test_it_refuses_grant_requests_for_agents_of_other_teams(as_bob: APIClient, platform_team: Team) -> None:
    make_agent(platform_team)
    make_tool(platform_team)

    response = as_bob.post(GRANTS, {"agent": "release-notes-agent", "tool": "github-mcp"}, format="json")

    assert response.status_code == 403
    assert not ToolGrant.objects.exists()


def test_it_answers_bad_grant_input_with_400_naming_the_field(as_alice: APIClient, platform_team: Team) -> None:
    make_agent(platform_team)
    make_tool(platform_team)

    unknown_tool = as_alice.post(GRANTS, {"agent": "release-notes-agent", "tool": "nope"}, format="json")
    assert unknown_tool.status_code == 400
    assert "tool" in error_fields(unknown_tool)
    unknown_capability = as_alice.post(
        GRANTS, {"agent": "release-notes-agent", "tool": "github-mcp", "capability_names": ["rm_rf"]}, format="json"
    )
    assert unknown_capability.status_code == 400
    assert "capability_names" in error_fields(unknown_capability)


# --- teams and models --------------------------------------------------------------------------------------


def test_it_lets_only_platform_admins_create_teams(as_admin: APIClient, as_alice: APIClient) -> None:
    denied = as_alice.post("/api/v1/teams/", {"name": "rogue-team"}, format="json")
    assert denied.status_code == 403
    assert not Team.objects.filter(name="rogue-team").exists()

    created = as_admin.post("/api/v1/teams/", {"name": "data-eng", "title": "Data engineering"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["members"] == []

    assert [t["name"] for t in as_alice.get("/api/v1/teams/?q=engineering").json()["results"]] == ["data-eng"]
    members = as_alice.get("/api/v1/teams/platform-ai/").json()["members"]
    assert members == [{"username": "alice", "role": "maintainer"}]

    bad = as_admin.post("/api/v1/teams/", {"name": "Bad Name"}, format="json")
    assert bad.status_code == 400
    assert "name" in error_fields(bad)


def test_it_lets_only_platform_admins_register_models(
    as_admin: APIClient, as_alice: APIClient, platform_team: Team
) -> None:
    assert as_alice.post("/api/v1/models/", {"name": "claude-sonnet-4"}, format="json").status_code == 403

    created = as_admin.post(
        "/api/v1/models/",
        {"name": "claude-sonnet-4", "provider": "Anthropic", "data_class": "confidential"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    patched = as_admin.patch("/api/v1/models/claude-sonnet-4/", {"residency": "EU"}, format="json")
    assert patched.json() == {
        "name": "claude-sonnet-4",
        "title": "",
        "provider": "Anthropic",
        "model_id": "",
        "hosting": "",
        "residency": "EU",
        "data_class": "confidential",
    }

    agent = as_alice.post(
        AGENTS, {"name": "model-agent", "owner": "platform-ai", "models": ["claude-sonnet-4"]}, format="json"
    )
    assert agent.status_code == 201
    assert agent.json()["models"] == ["claude-sonnet-4"]
    unknown = as_alice.post(
        AGENTS, {"name": "other-agent", "owner": "platform-ai", "models": ["gpt-99"]}, format="json"
    )
    assert unknown.status_code == 400
    assert "models" in error_fields(unknown)


# --- locations ---------------------------------------------------------------------------------------------


def test_it_registers_syncs_and_removes_a_location(
    as_alice: APIClient, as_bob: APIClient, platform_team: Team, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as queued:
        created = as_alice.post(
            "/api/v1/locations/",
            {"kind": "git", "target": str(tmp_path), "path": "catalog", "default_owner": "platform-ai"},
            format="json",
        )
    assert created.status_code == 201, created.json()
    location = created.json()
    assert location["default_owner"] == "platform-ai"
    assert location["last_outcome"] == "never"
    assert len(queued) == 1

    assert as_alice.get("/api/v1/locations/").json()["count"] == 1
    with django_capture_on_commit_callbacks() as queued:
        synced = as_alice.post(f"/api/v1/locations/{location['id']}/sync/")
    assert synced.status_code == 202
    assert len(queued) == 1

    assert as_bob.delete(f"/api/v1/locations/{location['id']}/").status_code == 403
    assert as_alice.delete(f"/api/v1/locations/{location['id']}/").status_code == 204
    assert not Location.objects.exists()


def test_it_refuses_locations_for_teams_one_does_not_maintain(as_bob: APIClient, platform_team: Team) -> None:
    response = as_bob.post(
        "/api/v1/locations/",
        {"kind": "url", "target": "https://example.com/catalog-info.yaml", "default_owner": "platform-ai"},
        format="json",
    )

    assert response.status_code == 403
    assert not Location.objects.exists()


# --- import and export -------------------------------------------------------------------------------------


def test_it_imports_backstage_yaml_and_reimport_reports_unchanged(as_admin: APIClient) -> None:
    payload = {"content": BACKSTAGE_YAML, "filename": "catalog-info.yaml"}

    dry = as_admin.post("/api/v1/import/?dry_run=true", payload, format="json")
    assert dry.status_code == 200, dry.json()
    assert dry.json()["dry_run"] is True
    assert dry.json()["created"] == 3
    assert not Agent.objects.exists()

    first = as_admin.post("/api/v1/import/", payload, format="json")
    assert first.status_code == 200, first.json()
    assert first.json()["created"] == 3
    assert {(e["kind"], e["name"], e["outcome"]) for e in first.json()["entities"]} == {
        ("team", "imported-team", "created"),
        ("agent", "triage-agent", "created"),
        ("tool", "issues-mcp", "created"),
    }
    agent = as_admin.get(f"{AGENTS}triage-agent/").json()
    assert agent["owner"] == "imported-team"
    assert agent["tools"] == ["issues-mcp"]
    assert agent["risk"]["factors"]
    assert as_admin.get(f"{TOOLS}issues-mcp/").json()["capabilities"][0]["read_only"] is True

    upload = SimpleUploadedFile("catalog-info.yaml", BACKSTAGE_YAML.encode(), content_type="application/yaml")
    again = as_admin.post("/api/v1/import/", {"files": [upload]}, format="multipart")
    assert again.status_code == 200, again.json()
    assert (again.json()["created"], again.json()["updated"], again.json()["unchanged"]) == (0, 0, 3)


def test_it_answers_a_yaml_bomb_with_a_clear_error(as_alice: APIClient) -> None:
    response = as_alice.post("/api/v1/import/", {"content": YAML_BOMB, "filename": "bomb.yaml"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    report = error["fields"]["report"]
    assert report["failed"] == 1
    assert report["errors"][0]["source"] == "bomb.yaml"
    assert "anchors" in report["errors"][0]["message"]
    assert not Agent.objects.exists()


def test_it_reports_import_errors_per_document(as_alice: APIClient) -> None:
    content = BACKSTAGE_YAML.split("---\n")[1]  # the agent, owned by a team that does not exist

    response = as_alice.post("/api/v1/import/", {"content": content}, format="json")

    assert response.status_code == 400
    errors = response.json()["error"]["fields"]["report"]["errors"]
    assert errors[0]["field"] == "spec.owner"
    assert "imported-team" in errors[0]["message"]


def test_it_refuses_imports_larger_than_the_upload_limit(as_alice: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096

    response = as_alice.post("/api/v1/import/", {"content": "x" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "at most 4,096 bytes" in response.json()["error"]["message"]

    upload = SimpleUploadedFile("big.yaml", b"#" * 5000)
    assert as_alice.post("/api/v1/import/", {"files": [upload]}, format="multipart").status_code == 413


def test_it_asks_for_content_or_files(as_alice: APIClient) -> None:
    assert "content" in error_fields(as_alice.post("/api/v1/import/", {}, format="json"))
    assert "files" in error_fields(as_alice.post("/api/v1/import/", {"owner": "x"}, format="multipart"))


def test_it_exports_the_catalog_as_backstage_yaml(as_alice: APIClient, platform_team: Team) -> None:
    make_agent(platform_team)
    make_tool(platform_team)

    response = as_alice.get("/api/v1/export/backstage")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    documents = list(yaml.safe_load_all(response.content.decode()))
    components = [d for d in documents if d["kind"] == "Component"]
    assert [d["metadata"]["name"] for d in components] == ["release-notes-agent"]
    assert components[0]["spec"]["owner"] == "group:platform-ai"
    assert any(d["kind"] == "API" and d["metadata"]["name"] == "github-mcp" for d in documents)
    assert as_alice.get("/api/v1/export/backstage", HTTP_ACCEPT="text/yaml")["Content-Type"].startswith("text/yaml")


# --- query counts and schema -------------------------------------------------------------------------------


def _populate(numbers: range, owner: Team, make_team: Callable[..., Any]) -> None:
    """Rows for every list: teams (with a parent), tools, agents (models, calls, tools), grants, locations."""
    for number in numbers:
        team = make_team(f"team-{number:02d}")
        Team.objects.filter(pk=team.pk).update(parent=owner)
        tool = make_tool(team, f"tool-{number:02d}")
        model, _ = services.model_upsert(data={"name": f"model-{number:02d}"})
        agent = make_agent(owner, f"agent-{number:02d}", tags=[f"t{number}"], tools=[tool.name], models=[model.name])
        agent.calls.add(*Agent.objects.exclude(pk=agent.pk)[:2])
        services.grant_request(actor=None, agent=agent, tool=tool)
        Location.objects.create(kind="url", target=f"https://example.com/{number}.yaml", default_owner=team)


@pytest.mark.parametrize("url", [AGENTS, TOOLS, GRANTS, "/api/v1/teams/", "/api/v1/models/", "/api/v1/locations/"])
def test_it_lists_with_a_number_of_queries_that_does_not_grow_with_rows(
    as_alice: APIClient,
    platform_team: Team,
    make_team: Callable[..., Any],
    django_assert_max_num_queries: Any,
    url: str,
) -> None:
    _populate(range(3), platform_team, make_team)
    with CaptureQueriesContext(connection) as few:
        assert as_alice.get(f"{url}?page_size=100").status_code == 200

    _populate(range(3, 30), platform_team, make_team)
    with django_assert_max_num_queries(len(few)):
        response = as_alice.get(f"{url}?page_size=100")

    assert response.status_code == 200
    assert response.json()["count"] >= 30


def test_it_publishes_an_openapi_schema_without_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = yaml.safe_load(target.read_text())
    for path in (
        "/api/v1/agents/",
        "/api/v1/agents/{name}/",
        "/api/v1/tools/",
        "/api/v1/tools/{name}/",
        "/api/v1/models/{name}/",
        "/api/v1/teams/{name}/",
        "/api/v1/grants/{id}/",
        "/api/v1/locations/{id}/sync/",
        "/api/v1/import/",
        "/api/v1/export/backstage",
    ):
        assert path in schema["paths"], path
    agent_filters = {p["name"] for p in schema["paths"]["/api/v1/agents/"]["get"]["parameters"]}
    assert agent_filters >= {"owner", "lifecycle", "status", "agent_type", "autonomy_level", "risk_tier", "tag", "q"}
    ours = ("Agent", "Tool", "Grant", "Team", "AIModel", "Location", "Import", "Risk", "Capability")
    for name, component in schema["components"]["schemas"].items():
        if name.startswith(ours) or name.startswith(tuple(f"Patched{prefix}" for prefix in ours)):
            for field, field_schema in component.get("properties", {}).items():
                assert field_schema.get("description"), f"{name}.{field} has no description"
