from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from catalog.models import ToolGrant
from portal.models import ApiToken
from runtime.models import Finding
from runtime.tests.otlp_builders import as_json, chat, tool_call

pytestmark = pytest.mark.django_db
SERVER = "io.github.example/github"


def _send(post_spans: Any, secret: str, spans: list[dict[str, Any]]) -> None:
    response = post_spans(as_json(spans), secret)
    assert response.status_code == 200, response.content


def _kinds() -> list[tuple[str, str, str]]:
    return sorted(Finding.objects.values_list("agent_key", "tool_key", "kind"))


def test_a_call_with_no_grant_opens_one_finding_counted_up(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any, make_team: Any
) -> None:
    from catalog import services

    services.tool_create(
        actor=None,
        data={"name": "jira", "owner": "payments", "capabilities": [{"name": "search"}]},
        check_permission=False,
    )
    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("billing-bot", "search", server="jira")] * 2)
    _send(post_spans, secret, [tool_call("billing-bot", "search", server="jira")])
    finding = Finding.objects.get()
    assert (finding.kind, finding.agent_key, finding.tool_key, finding.count) == ("no_grant", "billing-bot", "jira", 3)
    assert finding.owner_team == "payments" and finding.first_seen <= finding.last_seen


def test_a_capability_outside_the_grant(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("billing-bot", "delete_repo", server=SERVER)])
    assert _kinds() == [("billing-bot", "github", "capability_not_granted")]


def test_an_environment_not_granted(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("billing-bot", "create_issue", server=SERVER, environment="staging")])
    assert _kinds() == [("billing-bot", "github", "environment_not_granted")]


@pytest.mark.parametrize(
    ("status", "kind"), [("revoked", "grant_revoked"), ("denied", "grant_denied"), ("requested", "grant_pending")]
)
def test_a_call_on_a_grant_that_is_not_approved(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any, status: str, kind: str
) -> None:
    ToolGrant.objects.filter(pk=catalog_setup["grant"].pk).update(status=status)
    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("billing-bot", "create_issue", server=SERVER)])
    assert _kinds() == [("billing-bot", "github", kind)]


def test_a_call_after_expiry_is_judged_at_the_spans_time(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    expiry = timezone.now() - timedelta(hours=1)
    ToolGrant.objects.filter(pk=catalog_setup["grant"].pk).update(expires_at=expiry)
    secret, _ = telemetry_token()
    before = tool_call("billing-bot", "create_issue", server=SERVER)
    before["start_ns"] = int((expiry - timedelta(minutes=5)).timestamp() * 1e9)
    _send(post_spans, secret, [before])
    assert not Finding.objects.exists()
    _send(post_spans, secret, [tool_call("billing-bot", "create_issue", server=SERVER)])
    assert _kinds() == [("billing-bot", "github", "grant_expired")]


def test_an_unknown_agent_is_shadow_ai_with_what_it_called(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("rogue-bot", "create_issue", server=SERVER), chat("rogue-bot", "gpt-4o")])
    assert _kinds() == [("rogue-bot", "", "unknown_agent"), ("rogue-bot", "github", "unknown_agent")]


def test_an_unknown_tool(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("billing-bot", "query", server="io.example/shadow-db")])
    finding = Finding.objects.get()
    assert (finding.kind, finding.tool_key, finding.capability) == ("unknown_tool", "io.example/shadow-db", "query")


def test_a_bound_token_claiming_another_agent(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    secret, token = telemetry_token(user=catalog_setup["alice"], agent="billing-bot")
    assert token.bound_agent_id == catalog_setup["agent"].pk and token.kind == ApiToken.Kind.AGENT
    _send(post_spans, secret, [tool_call("billing-bot", "create_issue", server=SERVER)])
    assert not Finding.objects.exists()
    _send(post_spans, secret, [tool_call("other-bot", "create_issue", server=SERVER)])
    finding = Finding.objects.get()
    assert (finding.kind, finding.agent_key, finding.severity) == ("token_agent_mismatch", "billing-bot", "critical")
    assert "other-bot" in finding.detail


def test_an_unbound_token_reports_for_any_agent(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    from catalog import services

    services.agent_create(actor=None, data={"name": "other-bot", "owner": "payments"}, check_permission=False)
    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("other-bot", "create_issue", server=SERVER)])
    assert _kinds() == [("other-bot", "github", "no_grant")]


def test_only_the_agents_owners_can_bind_a_token(catalog_setup: Any, make_user: Any) -> None:
    from portal.tokens import TokenValidationError, token_issue

    with pytest.raises(TokenValidationError, match="maintainers of team"):
        token_issue(
            issued_by=make_user("mallory"), name="x", scopes=["telemetry"], expires_in_days=5, agent="billing-bot"
        )
    with pytest.raises(TokenValidationError, match="telemetry scope"):
        token_issue(issued_by=catalog_setup["alice"], name="x", scopes=["read"], expires_in_days=5, agent="billing-bot")
    with pytest.raises(TokenValidationError, match="no agent"):
        token_issue(issued_by=catalog_setup["alice"], name="x", scopes=["telemetry"], expires_in_days=5, agent="nope")


def test_a_new_finding_notifies_the_team_and_security(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from approvals.tasks import send_notification
    from runtime.tasks import notify_finding

    secret, _ = telemetry_token()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _send(post_spans, secret, [tool_call("billing-bot", "delete_repo", server=SERVER)])
    assert callbacks
    finding = Finding.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        notify_finding.run(finding.pk)
    from approvals.models import Notification

    for notification_id in Notification.objects.values_list("pk", flat=True):
        send_notification.run(notification_id)
    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == ["alice@example.com", "sec@example.com"]
    assert "capability outside the grant" in mail.outbox[0].subject


@override_settings(RUNTIME_SUSPEND_ON_CRITICAL=True)
def test_policy_suspends_the_agents_tokens_on_a_critical_finding(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    ToolGrant.objects.filter(pk=catalog_setup["grant"].pk).update(status="revoked")
    secret, token = telemetry_token(user=catalog_setup["alice"], agent="billing-bot")
    _send(post_spans, secret, [tool_call("billing-bot", "create_issue", server=SERVER)])
    assert Finding.objects.get().severity == "critical"
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert post_spans(as_json([tool_call("billing-bot", "create_issue", server=SERVER)]), secret).status_code == 401


def test_a_resolved_finding_opens_again_as_a_new_one(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    from runtime.findings import finding_resolve

    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("billing-bot", "delete_repo", server=SERVER)])
    finding_resolve(actor=catalog_setup["alice"], finding=Finding.objects.get(), reason="fixed the agent")
    _send(post_spans, secret, [tool_call("billing-bot", "delete_repo", server=SERVER)])
    assert sorted(Finding.objects.values_list("state", flat=True)) == ["open", "resolved"]


def test_an_owner_issues_a_bound_token_through_the_api(catalog_setup: Any, api_client: Any, make_user: Any) -> None:
    api_client.force_login(catalog_setup["alice"])
    body = {"name": "billing ci", "scopes": ["telemetry"], "agent": "billing-bot"}
    response = api_client.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["bound_agent_id"] == catalog_setup["agent"].pk and response.json()["kind"] == "agent"
    api_client.force_login(make_user("mallory"))
    response = api_client.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400 and "agent" in response.json()["error"]["fields"]


def test_a_denied_grant_check_counts_into_the_same_finding_as_telemetry(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    from django.utils import timezone

    from runtime.findings import DeniedCalls, findings_from_denied_checks

    now = timezone.now()
    denied = DeniedCalls(
        "billing-bot", "github", "capability_not_granted", "delete_repo", "production", "not covered", 1, now, now
    )
    findings_from_denied_checks([denied])
    opened = Finding.objects.get().pk
    secret, _ = telemetry_token()
    _send(post_spans, secret, [tool_call("billing-bot", "delete_repo", server=SERVER)])
    finding = Finding.objects.get()
    assert (finding.pk, finding.count, finding.owner_team) == (opened, 2, "payments")
    findings_from_denied_checks([DeniedCalls("ghost", "github", "no_grant", "x", "production", "?", 3, now, now)])
    assert (Finding.objects.get(agent_key="ghost").kind, Finding.objects.get(agent_key="ghost").count) == (
        "unknown_agent",
        3,
    )
