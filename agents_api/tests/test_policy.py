"""The active grants as an agentgateway policy: valid against agentgateway's published schema, always current."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.core.management import call_command

from agents_api.policy import PolicyGrant, agentgateway_config, grant_rule
from catalog import services as catalog

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "agentgateway-config.schema.json").read_text())
POLICY = "/api/v1/grants/policy"


def test_a_rule_names_the_agent_the_server_the_capabilities_and_the_end() -> None:
    grant = PolicyGrant(1, "pr-reviewer", "github-mcp", ("get_file", 'we"ird'), datetime(2027, 1, 2, tzinfo=UTC),
                        "https://mcp.example.com/mcp", "streamable_http")  # fmt: skip
    assert grant_rule(grant) == (
        'jwt.sub == "pr-reviewer" && mcp.tool.target == "github-mcp" && mcp.tool.name in ["get_file", "we\\"ird"]'
        ' && request.startTime < timestamp("2027-01-02T00:00:00Z")'
    )
    forever = PolicyGrant(2, "a", "b", ("x",), None, "", "stdio")
    assert grant_rule(forever, identity="source.identity.serviceAccount") == (
        'source.identity.serviceAccount == "a" && mcp.tool.target == "b" && mcp.tool.name in ["x"]'
    )
    config = agentgateway_config([grant, forever, PolicyGrant(3, "c", "b", (), None, "", "")])
    assert config["mcp"]["targets"] == [{"name": "github-mcp", "mcp": {"host": "https://mcp.example.com/mcp"}}]
    assert len(config["mcp"]["policies"]["mcpAuthorization"]["rules"]) == 2  # a grant covering nothing: no rule
    jsonschema.Draft202012Validator(SCHEMA).validate(config)
    broken = {"mcp": {"targets": [{"name": "b", "mcp": {}}], "policies": {"mcpAuthorization": {"rule": []}}}}
    assert len(list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken))) > 0  # the schema does check


@pytest.mark.django_db
def test_the_endpoint_exports_active_grants_valid_against_agentgateways_schema(
    token_client: Callable[..., Any], make_user: Callable[..., Any], make_grant: Callable[..., Any], world: Any
) -> None:
    client = token_client(make_user("gateway"), scopes=["read"])
    grant = make_grant(capabilities=["get_file", "list_issues"])
    sse_tool = catalog.tool_create(
        actor=None,
        data={"name": "jira-mcp", "owner": "platform", "kind": "mcp_server", "transport": "sse",
              "endpoint_url": "https://jira.example.com/sse", "capabilities": [{"name": "search"}]},
    )  # fmt: skip
    make_grant(tool=sse_tool, capabilities=["search"], expires_in=None)
    make_grant(capabilities=["get_file"], environment="staging")

    response = client.get(POLICY, {"format": "agentgateway"})
    assert response.status_code == 200, response.content
    config = response.json()
    jsonschema.Draft202012Validator(SCHEMA).validate(config)
    assert config["mcp"]["targets"] == [
        {"name": "github-mcp", "mcp": {"host": "https://mcp.example.com/github/mcp"}},
        {"name": "jira-mcp", "sse": {"host": "https://jira.example.com/sse"}},
    ]
    until = grant.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert config["mcp"]["policies"]["mcpAuthorization"]["rules"] == [
        'jwt.sub == "pr-reviewer" && mcp.tool.target == "github-mcp" && mcp.tool.name in ["get_file", "list_issues"]'
        f' && request.startTime < timestamp("{until}")',
        'jwt.sub == "pr-reviewer" && mcp.tool.target == "jira-mcp" && mcp.tool.name in ["search"]',
    ]

    catalog.grant_set_status(grant=grant, status="revoked")  # regenerated on change: the next fetch reflects it
    rules = client.get(POLICY, {"format": "agentgateway"}).json()["mcp"]["policies"]["mcpAuthorization"]["rules"]
    assert [rule.split("mcp.tool.target == ")[1].split(" ")[0] for rule in rules] == ['"jira-mcp"']
    staging = client.get(POLICY, {"format": "agentgateway", "environment": "staging"}).json()
    assert len(staging["mcp"]["policies"]["mcpAuthorization"]["rules"]) == 1


@pytest.mark.django_db
def test_the_endpoint_names_a_bad_parameter(token_client: Callable[..., Any], make_user: Callable[..., Any]) -> None:
    client = token_client(make_user("gateway"), scopes=["read"])
    response = client.get(POLICY, {"format": "envoy"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"format": ["must be one of agentgateway."]}
    response = client.get(POLICY, {"format": "agentgateway", "identity": "jwt.sub || true"})
    assert response.status_code == 400
    assert "identity" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_the_command_writes_the_policy_file(tmp_path: Path, make_grant: Callable[..., Any]) -> None:
    make_grant(capabilities=["get_file"], expires_in=timedelta(days=3))
    target = tmp_path / "agentgateway-policy.json"
    call_command("grants_export_policy", "--output", str(target), stderr=io.StringIO())
    config = json.loads(target.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(config)
    assert len(config["mcp"]["policies"]["mcpAuthorization"]["rules"]) == 1
    out = io.StringIO()
    call_command("grants_export_policy", "--environment", "staging", stdout=out)
    assert json.loads(out.getvalue())["mcp"]["policies"]["mcpAuthorization"]["rules"] == []


def test_the_gateway_guides_agentgateway_example_is_valid_agentgateway_config() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "gateways.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", guide, re.S)
    config = yaml.safe_load(example)
    jsonschema.Draft202012Validator(SCHEMA).validate(config)
    path = config["binds"][0]["listeners"][0]["routes"][0]["policies"]["extAuthz"]["protocol"]["http"]["path"]
    assert path == '"/api/v1/grants/check/?enforce=true"'
