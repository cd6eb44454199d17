from __future__ import annotations

from typing import Any

import pytest

from approvals.models import ApprovalRequest
from catalog.models import ToolGrant
from runtime.models import Evaluation, Finding
from runtime.tests.otlp_builders import as_json, chat, tool_call

pytestmark = pytest.mark.django_db
SERVER = "io.github.example/github"


@pytest.fixture
def findings_seen(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> Any:
    secret, _ = telemetry_token()
    spans = [
        tool_call("billing-bot", "delete_repo", server=SERVER),
        tool_call("rogue-bot", "create_issue", server=SERVER),
    ]
    spans += [tool_call("billing-bot", "create_issue", server=SERVER, environment="staging")]
    assert post_spans(as_json(spans), secret).status_code == 200
    return catalog_setup


def test_findings_filter_by_agent_kind_and_state(findings_seen: Any, token_client: Any) -> None:
    client = token_client(scopes=["read"])
    rows = client.get("/api/v1/findings/").json()["results"]
    assert len(rows) == 3
    rows = client.get(
        "/api/v1/findings/", {"agent": "billing-bot", "kind": "capability_not_granted", "state": "open"}
    ).json()["results"]
    assert [(row["agent"], row["tool"], row["capability"], row["count"]) for row in rows] == [
        ("billing-bot", "github", "delete_repo", 1)
    ]
    response = client.get("/api/v1/findings/", {"kind": "bogus"})
    assert response.status_code == 400
    assert "kind" in response.json()["error"]["fields"]


def test_a_finding_can_be_accepted_with_a_reason_only(findings_seen: Any, token_client: Any) -> None:
    client = token_client(findings_seen["alice"], scopes=["read", "write"])
    finding = Finding.objects.get(kind="capability_not_granted")
    response = client.post(f"/api/v1/findings/{finding.pk}/", {"action": "accept"}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["error"]["fields"]
    response = client.post(
        f"/api/v1/findings/{finding.pk}/", {"action": "accept", "reason": "break-glass drill"}, format="json"
    )
    assert response.status_code == 200 and response.json()["state"] == "accepted"
    response = client.post(f"/api/v1/findings/{finding.pk}/", {"action": "resolve"}, format="json")
    assert response.status_code == 409


def test_only_owners_or_security_act_on_findings(findings_seen: Any, token_client: Any, make_user: Any) -> None:
    finding = Finding.objects.get(kind="capability_not_granted")
    outsider = token_client(make_user("mallory"), scopes=["read", "write"])
    assert outsider.post(f"/api/v1/findings/{finding.pk}/", {"action": "resolve"}, format="json").status_code == 403
    security = token_client(findings_seen["sec"], scopes=["read", "write"])
    assert security.post(f"/api/v1/findings/{finding.pk}/", {"action": "resolve"}, format="json").status_code == 200


def test_a_finding_becomes_a_grant_request_in_one_call(findings_seen: Any, token_client: Any) -> None:
    client = token_client(findings_seen["alice"], scopes=["read", "write"])
    finding = Finding.objects.get(kind="environment_not_granted")
    response = client.post(f"/api/v1/findings/{finding.pk}/", {"action": "request_grant"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "grant_requested"
    grant = ToolGrant.objects.get(pk=body["grant_id"])
    assert (grant.environment, grant.capability_names, grant.status) == ("staging", ["create_issue"], "requested")
    assert ApprovalRequest.objects.filter(grant=grant, kind="tool_grant").exists()


def test_an_unknown_agent_cannot_become_a_grant_request(findings_seen: Any, token_client: Any) -> None:
    client = token_client(findings_seen["sec"], scopes=["read", "write"])
    finding = Finding.objects.get(kind="unknown_agent")
    response = client.post(f"/api/v1/findings/{finding.pk}/", {"action": "request_grant"}, format="json")
    assert response.status_code == 400


def test_usage_shows_called_vs_granted_errors_latency_tokens_and_cost(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any, token_client: Any
) -> None:
    from catalog import services

    jira = services.tool_create(
        actor=None,
        data={"name": "jira", "owner": "payments", "capabilities": [{"name": "search"}]},
        check_permission=False,
    )
    grant, _ = services.grant_request(actor=None, agent=catalog_setup["agent"], tool=jira)
    ToolGrant.objects.filter(pk=grant.pk).update(status="approved")
    secret, _ = telemetry_token()
    spans = [tool_call("billing-bot", "create_issue", server=SERVER, duration_ms=40)] * 9
    spans += [tool_call("billing-bot", "create_issue", server=SERVER, error="Timeout", duration_ms=900)]
    spans += [chat("billing-bot", "gpt-4o", input_tokens=1_000_000, output_tokens=100_000)]
    assert post_spans(as_json(spans), secret).status_code == 200
    reader = token_client(scopes=["read"])
    usage = reader.get("/api/v1/agents/billing-bot/usage/").json()
    assert usage["totals"]["calls"] == 10 and usage["totals"]["error_rate"] == 0.1
    (tool,) = usage["tools"]
    assert tool["tool"] == "github" and tool["granted"] and tool["capabilities"] == {"create_issue": 10}
    assert 25 <= tool["p50_ms"] <= 50 and tool["p95_ms"] > 500
    assert usage["unused_grants"] == [
        {"grant_id": grant.pk, "tool": "jira", "environment": "production", "suggestion": "revoke"}
    ]
    assert usage["models"][0]["estimated_cost_usd"] == 3.5  # 1M in at $2.5 + 0.1M out at $10
    assert usage["trend"][-1]["calls"] == 10 and len(usage["trend"]) == 30
    assert reader.get("/api/v1/agents/nope/usage/").status_code == 404


def test_ci_reports_evaluations_with_the_agents_own_token(
    catalog_setup: Any, telemetry_token: Any, api_client: Any, make_user: Any
) -> None:
    secret, _ = telemetry_token(user=catalog_setup["alice"], agent="billing-bot")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api_client.post(
        "/api/v1/agents/billing-bot/evaluations/", {"suite": "golden", "passed": True, "score": 0.93}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Evaluation.objects.get().passed
    response = api_client.post("/api/v1/agents/billing-bot/evaluations/", {"suite": "", "passed": "yes"}, format="json")
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"suite", "passed"}
    from catalog import services

    services.agent_create(actor=None, data={"name": "other-bot", "owner": "payments"}, check_permission=False)
    response = api_client.post(
        "/api/v1/agents/other-bot/evaluations/", {"suite": "golden", "passed": True}, format="json"
    )
    assert response.status_code == 403
