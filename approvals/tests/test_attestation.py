"""The trust path for capability hints and the drift check, against a real local MCP server."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from approvals import attestation, drift, services
from approvals.models import ApprovalRequest
from approvals.tests.conftest import submitted
from catalog import services as catalog
from catalog.attestation import tool_current_attestation
from catalog.models import HintsAttestation, Tool
from portal.models import AuditEvent
from portal.testing.servers import McpTestServer, McpToolSpec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
REQUESTS = "/api/v1/approvals/requests/"
SERVED = [
    McpToolSpec(name="list_items", read_only=True, destructive=False, idempotent=True, open_world=False),
    McpToolSpec(name="get_item", read_only=True, destructive=False, idempotent=True, open_world=False),
]
DECLARED = [
    {"name": "list_items", "read_only": True, "destructive": False, "idempotent": True, "open_world": False},
    {"name": "get_item", "read_only": True, "destructive": False, "idempotent": True, "open_world": False},
]


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def mcp_tool(world: dict[str, Any], url: str, **extra: Any) -> Tool:
    data = {"name": "items-mcp", "owner": "payments", "kind": "mcp_server", "transport": "streamable_http",
            "endpoint_url": url, "version": "2.0.0", "description": "Items.", "data_class": "internal",
            "reach": "closed", "credential_scope": "none", "capabilities": DECLARED, **extra}  # fmt: skip
    return catalog.tool_create(actor=world["owner"], data=data)


def test_a_security_reviewer_attests_hints_through_the_api_and_the_tier_drops(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    capture = django_capture_on_commit_callbacks
    with McpTestServer(SERVED) as server:
        tool = mcp_tool(world, server.url)
        assert tool.risk_tier == "critical"  # unattested hints count as destructive and open-world
        request = submitted(capture, world["owner"], kind="tool_onboarding", tool=tool)
        assert (request.tier, request.state) == ("critical", "in_review")
        body = api(world["reviewer"]).get(f"{REQUESTS}{request.pk}/").json()
        hints = body["hints"]
        assert hints["trusted"] is False and hints["attestation"] is None and hints["can_attest"] is True
        assert {row["name"]: row["observed"]["read_only"] for row in hints["rows"]} == {
            "get_item": True,
            "list_items": True,
        }

        owner_try = api(world["owner"]).post(
            f"{REQUESTS}{request.pk}/hints-attestation/",
            {"capabilities_hash": hints["capabilities_hash"]},
            format="json",
        )
        stale = api(world["reviewer"]).post(
            f"{REQUESTS}{request.pk}/hints-attestation/", {"capabilities_hash": "x"}, format="json"
        )
        with capture(execute=True):
            attested = api(world["reviewer"]).post(
                f"{REQUESTS}{request.pk}/hints-attestation/",
                {"capabilities_hash": hints["capabilities_hash"], "comment": "Matches the live server."},
                format="json",
            )

    assert owner_try.status_code == 403
    assert stale.status_code == 409 and "changed since you loaded" in stale.json()["error"]["message"]
    assert attested.status_code == 200, attested.content
    record = HintsAttestation.objects.get(tool=tool)
    assert (record.attested_by, record.declared, record.differences) == (world["reviewer"], DECLARED[::-1], [])
    assert {item["name"] for item in record.observed} == {"list_items", "get_item"}
    assert record.server["name"] == "test-mcp-server"
    tool.refresh_from_db()
    assert (tool.annotations_trusted, tool.risk_tier) == (True, "low")
    body = attested.json()
    assert (body["round"], body["tier"]) == (2, "low")  # attesting changed the facts: a new round on them
    assert body["hints"]["attestation"]["attested_by"] == "rita"
    assert AuditEvent.objects.filter(action="catalog.tool.hints_attested").count() == 1

    # Any change of the capabilities invalidates the attestation.
    catalog.tool_update(actor=world["owner"], tool=tool, data={"capabilities": DECLARED[:1]})
    record.refresh_from_db()
    tool.refresh_from_db()
    assert record.invalidated_at is not None and tool.annotations_trusted is False
    assert tool_current_attestation(tool) is None


def test_a_live_server_that_contradicts_the_declaration_cannot_be_attested(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    served = [SERVED[0], McpToolSpec(name="get_item", read_only=False, destructive=True)]
    with McpTestServer(served) as server:
        tool = mcp_tool(world, server.url)
        with pytest.raises(services.ApprovalConflict, match="get_item: declared read_only=True, server says False"):
            attestation.hints_attest(actor=world["reviewer"], tool=tool, capabilities_hash=tool.capabilities_hash)
    assert not HintsAttestation.objects.exists()
    assert Tool.objects.get(pk=tool.pk).annotations_trusted is False


def test_the_review_page_shows_declared_beside_observed_and_attests(
    client: Any, world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    with McpTestServer(SERVED) as server:
        tool = mcp_tool(world, server.url)
        request = submitted(django_capture_on_commit_callbacks, world["owner"], kind="tool_onboarding", tool=tool)
        client.force_login(world["lead"])
        page = client.get(reverse("approvals:request", args=[request.pk])).content.decode()
        assert 'data-testid="hints-unattested"' in page and 'data-testid="attest-hints-form"' in page
        assert page.count('data-testid="hints-row"') == 2
        assert "read-only yes, destructive no, idempotent yes, open-world no" in page
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("approvals:attest-hints", args=[request.pk]), {"capabilities_hash": tool.capabilities_hash}
            )
    assert response.status_code == 302
    page = client.get(reverse("approvals:request", args=[request.pk])).content.decode()
    assert 'data-testid="hints-attested"' in page and "Attested by lena" in page
    assert 'data-testid="attest-hints-form"' not in page


def test_the_drift_check_reopens_review_when_the_live_server_changes(
    world: dict[str, Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SSRF_ALLOWLIST = ["127.0.0.1"]
    capture = django_capture_on_commit_callbacks
    with McpTestServer(SERVED) as server:
        tool = mcp_tool(world, server.url)
        catalog.tool_attest_annotations(tool=tool)
        request = submitted(capture, world["owner"], kind="tool_onboarding", tool=tool, attested_by=world["reviewer"])
        assert request.state == "approved", [(c.name, c.status, c.summary) for c in request.checks.all()]
        assert drift.drift_check().as_dict() == {"checked": 1, "drifted": 0, "reopened": 0, "unreachable": 0}

        server.tools.append(McpToolSpec(name="drop_table", destructive=True).as_mcp())
        with capture(execute=True):
            first = drift.drift_check()
            again = drift.drift_check()

    assert first.as_dict() == {"checked": 1, "drifted": 1, "reopened": 1, "unreachable": 0}
    assert again.as_dict() == {"checked": 1, "drifted": 1, "reopened": 0, "unreachable": 0}  # once per drift
    re_review = ApprovalRequest.objects.get(kind="re_review")
    assert "drop_table: on the server but not declared" in re_review.justification
    assert re_review.previous_id == request.pk
    assert [m.subject for m in mail.outbox if "differs from what was approved" in m.subject] == [
        "Live MCP server differs from what was approved: items-mcp"
    ]
    assert AuditEvent.objects.filter(action="approvals.drift.detected").count() == 2
    assert drift.drift_check().as_dict()["unreachable"] == 1  # the server is gone: counted, nothing reopened
