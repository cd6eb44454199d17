"""grant_request_submit: the one path from "an agent needs a tool" to a submitted tool-grant request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from approvals import services, submitting
from approvals.models import ApprovalRequest
from catalog import services as catalog
from catalog.models import ToolGrant

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(world: dict[str, Any]) -> Any:
    return catalog.agent_create(
        actor=world["owner"],
        data={"name": "stock-bot", "owner": "payments", "autonomy_level": 2, "human_in_loop": "per_action",
              "data_class": "internal", "description": "Restocks."},
    )  # fmt: skip


def test_it_requests_the_grant_and_submits_it_without_approving(
    world: dict[str, Any], agent: Any, make_tool: Callable[..., Any]
) -> None:
    tool = make_tool(tier="medium")
    request = submitting.grant_request_submit(
        actor=world["owner"], agent=agent, tool=tool, capability_names=["get_item"], justification="Restocking."
    )
    assert (request.kind, request.state, request.requester) == ("tool_grant", "checking", world["owner"])
    assert request.justification == "Restocking."
    grant = ToolGrant.objects.get(pk=request.grant_id)
    assert (grant.status, grant.capability_names, grant.environment) == ("requested", ["get_item"], "production")


def test_nothing_is_left_behind_when_the_submit_is_refused(
    world: dict[str, Any], agent: Any, make_tool: Callable[..., Any]
) -> None:
    tool = make_tool(tier="medium")
    with pytest.raises(services.ApprovalError):
        submitting.grant_request_submit(actor=world["owner"], agent=agent, tool=tool, justification="x" * 100_000)
    assert not ToolGrant.objects.exists()
    assert not ApprovalRequest.objects.exists()


def test_a_second_request_names_the_open_one(world: dict[str, Any], agent: Any, make_tool: Callable[..., Any]) -> None:
    tool = make_tool(tier="medium")
    first = submitting.grant_request_submit(actor=world["owner"], agent=agent, tool=tool)
    with pytest.raises(services.ApprovalConflict, match=f"#{first.pk}"):
        submitting.grant_request_submit(actor=world["owner"], agent=agent, tool=tool)
    assert ApprovalRequest.objects.count() == 1


def test_only_the_agents_maintainers_may_ask(
    world: dict[str, Any], agent: Any, make_tool: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    with pytest.raises(catalog.CatalogPermissionError):
        submitting.grant_request_submit(actor=make_user("stranger"), agent=agent, tool=make_tool(tier="medium"))
    assert not ToolGrant.objects.exists()
