"""Every door holds a raise of autonomy to 4 or 5 the same way: the UI edit form, the REST API and catalog imports
(the gate itself is tested in test_autonomy.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from approvals.models import ApprovalRequest
from catalog import services as catalog
from catalog.importing import import_inputs
from catalog.models import Agent
from portal.context import acting_as, actor_for_user

pytestmark = pytest.mark.django_db
FACTS = {"description": "Bills.", "data_class": "internal", "human_in_loop": "per_action", "autonomy_level": 3}
DESCRIPTOR = """
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: billing-bot
  description: Bills.
  labels: {{agentportal.io/autonomy-level: "{level}", agentportal.io/human-in-loop: per_action,
           agentportal.io/data-class: internal}}
spec:
  type: ai-agent
  lifecycle: production
  owner: group:payments
"""


@pytest.fixture
def agent(catalog_setup: dict[str, Any]) -> Agent:
    with acting_as(actor_for_user(catalog_setup["alice"])):  # type: ignore[arg-type]
        return catalog.agent_update(actor=catalog_setup["alice"], agent=catalog_setup["agent"], data=FACTS)


def _open_request(agent: Agent) -> ApprovalRequest:
    return ApprovalRequest.objects.get(agent=agent, kind="autonomy_change", state__in=["checking", "in_review"])


def test_the_edit_form_keeps_the_level_and_says_where_the_raise_waits(
    client: Any, catalog_setup: Any, agent: Agent
) -> None:
    client.force_login(catalog_setup["alice"])
    url = reverse("catalog:agent-edit", args=[agent.name])
    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}
    data.update(autonomy_level="5", title="Billing Bot")

    response = client.post(url, data, follow=True)

    request = _open_request(agent)
    page = response.content.decode()
    assert f"Autonomy 5 requested: request #{request.pk}, waiting for approval." in page
    stored = Agent.objects.get(pk=agent.pk)
    assert (stored.autonomy_level, stored.title) == (3, "Billing Bot")
    # The agent page shows the open request, the levels and the evidence check's state.
    assert 'data-testid="autonomy-request"' in page
    assert reverse("approvals:request", args=[request.pk]) in page
    assert "the agent keeps level 3 until it is approved" in page
    assert "being checked" in page  # the checks have not run in this test
    assert 'data-testid="submit-form"' in page  # the agent's own onboarding can still be asked for
    # The request page puts the requested level in front of reviewers.
    review = client.get(reverse("approvals:request", args=[request.pk])).content.decode()
    assert 'data-testid="proposed-changes"' in review and "<ins>5</ins>" in review

    data.update(autonomy_level="4")
    refused = client.post(url, data)
    assert refused.status_code == 200
    assert f"request #{request.pk}" in str(refused.context["form"].errors["autonomy_level"])
    assert Agent.objects.get(pk=agent.pk).autonomy_level == 3


def test_the_api_answers_202_with_the_agent_unchanged_and_the_pending_request(
    catalog_setup: Any, agent: Agent, token_client: Any
) -> None:
    client = token_client(user=catalog_setup["alice"], scopes=["read", "write"])
    url = f"/api/v1/agents/{agent.name}/"

    response = client.patch(url, {"autonomy_level": 5, "title": "Billing Bot"}, format="json")

    assert response.status_code == 202, response.content
    request = _open_request(agent)
    body = response.json()
    assert (body["autonomy_level"], body["title"]) == (3, "Billing Bot")
    assert body["pending"] == [
        {
            "field": "autonomy_level",
            "current": 3,
            "requested": 5,
            "request": request.pk,
            "message": f"Autonomy 5 requested: request #{request.pk}, waiting for approval.",
        }
    ]
    assert response["Location"].endswith(f"/api/v1/approvals/requests/{request.pk}/")
    detail = client.get(response["Location"]).json()
    assert (detail["kind"], detail["proposed_changes"]) == (
        "autonomy_change",
        {"autonomy_level": {"before": 3, "after": 5}},
    )
    assert detail["bound_facts"]["autonomy_level"] == 5

    again = client.patch(url, {"autonomy_level": 5}, format="json")
    assert (again.status_code, again.json()["pending"][0]["request"]) == (202, request.pk)
    conflict = client.patch(url, {"autonomy_level": 4}, format="json")
    assert conflict.status_code == 409
    assert f"request #{request.pk}" in conflict.json()["error"]["message"]

    lowered = client.patch(url, {"autonomy_level": 2}, format="json")
    assert lowered.status_code == 200
    assert (lowered.json()["autonomy_level"], lowered.json()["pending"]) == (2, [])
    assert ApprovalRequest.objects.filter(kind="autonomy_change").count() == 1


def test_an_import_holds_the_documents_level_and_its_report_says_so(catalog_setup: Any, agent: Agent) -> None:
    alice = catalog_setup["alice"]
    document = DESCRIPTOR.format(level=5).encode()

    report = import_inputs([("catalog-info.yaml", document)], actor=alice, refuse_conflicts=False, adopt=False)

    assert report.failed == 0, [str(e) for e in report.errors]
    request = _open_request(agent)
    assert Agent.objects.get(pk=agent.pk).autonomy_level == 3
    assert report.held == [
        {
            "kind": "agent",
            "name": "billing-bot",
            "field": "autonomy_level",
            "current": 3,
            "requested": 5,
            "request": request.pk,
            "message": f"agent billing-bot: Autonomy 5 requested: request #{request.pk}, waiting for approval.",
        }
    ]
    assert report.as_dict()["held"] == report.held
    # A re-import (a location sync) of the same document finds the same request.
    again = import_inputs([("catalog-info.yaml", document)], actor=alice)
    assert [item["request"] for item in again.held] == [request.pk]
    assert ApprovalRequest.objects.filter(kind="autonomy_change").count() == 1
    # Another level while it is open: that document fails, naming the request; nothing of it is written.
    other = import_inputs([("catalog-info.yaml", DESCRIPTOR.format(level=4).encode())], actor=alice)
    assert other.failed == 1 and f"request #{request.pk}" in str(other.errors[0])


def test_a_system_import_files_nothing_and_says_who_can_ask(catalog_setup: Any, agent: Agent) -> None:
    report = import_inputs([("catalog-info.yaml", DESCRIPTOR.format(level=5).encode())])

    assert report.failed == 0, [str(e) for e in report.errors]
    assert Agent.objects.get(pk=agent.pk).autonomy_level == 3
    [held] = report.held
    assert held["request"] is None
    assert "Autonomy 5 not applied" in held["message"] and "payments" in held["message"]
    assert not ApprovalRequest.objects.filter(kind="autonomy_change").exists()


def test_a_dry_run_import_reports_the_hold_without_a_request(catalog_setup: Any, agent: Agent) -> None:
    document = DESCRIPTOR.format(level=5).encode()
    report = import_inputs([("catalog-info.yaml", document)], actor=catalog_setup["alice"], dry_run=True)
    assert [(item["request"], item["requested"]) for item in report.held] == [(None, 5)]
    assert "dry run" in report.held[0]["message"]
    assert not ApprovalRequest.objects.filter(kind="autonomy_change").exists()


def test_the_import_page_lists_what_waits_for_approval(client: Any, catalog_setup: Any, agent: Agent) -> None:
    client.force_login(catalog_setup["alice"])
    upload = {"text": DESCRIPTOR.format(level=5), "default_owner": ""}
    page = client.post(reverse("catalog:import"), upload).content.decode()
    request = _open_request(agent)
    assert 'data-testid="import-held"' in page
    assert f"Autonomy 5 requested: request #{request.pk}" in page


def test_the_schema_documents_the_202_and_the_pending_field() -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    patch = schema["paths"]["/api/v1/agents/{name}/"]["patch"]
    assert {"200", "202", "409"} <= set(patch["responses"])
    assert "Location" in patch["responses"]["202"]["headers"]
    updated = schema["components"]["schemas"]["AgentUpdated"]
    assert "pending" in updated["properties"]
