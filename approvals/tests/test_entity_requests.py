"""The requests an entity page shows: the newest and every open one, however old (approvals.selectors)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.selectors import entity_requests

pytestmark = pytest.mark.django_db


def _request(tool: Any, world: dict[str, Any], kind: str, state: str, days_ago: int) -> ApprovalRequest:
    return ApprovalRequest.objects.create(
        kind=kind,
        state=state,
        tool=tool,
        subject_key=f"tool:{tool.pk}",
        title=f"{kind} {days_ago}",
        requester=world["owner"],
        owning_team=world["team"],
        tier=tool.risk_tier,
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def test_it_reads_the_newest_requests_and_every_open_one_newest_first(world: dict[str, Any], make_tool: Any) -> None:
    tool = make_tool()
    onboarding, recertification = ApprovalRequest.Kind.TOOL_ONBOARDING, ApprovalRequest.Kind.RECERTIFICATION
    old_open = _request(tool, world, recertification, ApprovalRequest.State.IN_REVIEW, days_ago=40)
    closed = [_request(tool, world, onboarding, ApprovalRequest.State.REJECTED, days_ago=day) for day in range(1, 12)]
    draft = _request(tool, world, onboarding, ApprovalRequest.State.DRAFT, days_ago=20)

    shown = entity_requests(entity=tool, newest=3)

    assert shown == [*closed[:3], draft, old_open]
    assert all(request.tool is tool for request in shown)  # attached by the related manager, not read again
    assert entity_requests(entity=tool, newest=1) == [closed[0], draft, old_open]
    assert entity_requests(entity=make_tool(name="quiet-api"), newest=5) == []
