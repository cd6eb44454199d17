"""Audit events read as sentences (portal/activity.py): pure, no database."""

from __future__ import annotations

import pytest

from portal.activity import describe


@pytest.mark.parametrize(
    ("event", "sentence"),
    [
        (
            {"action": "approvals.decision.approve", "actor": "alice", "changes": {"stage": "Security review"}},
            "alice approved stage Security review",
        ),
        (
            {"action": "approvals.decision.request_changes", "actor": "sam", "changes": {"stage": "Security"}},
            "sam asked for changes at stage Security",
        ),
        (
            {
                "action": "catalog.tool.status_changed",
                "actor": "system",
                "object_type": "catalog.tool",
                "object_repr": "github-mcp",
                "changes": {"status": {"before": "draft", "after": "pending_review"}},
            },
            "system changed the status of tool github-mcp from draft to pending review",
        ),
        (
            {
                "action": "catalog.team.member_set",
                "actor": "admin",
                "object_type": "catalog.team",
                "object_repr": "payments",
                "changes": {"user": "bob", "role": {"before": None, "after": "maintainer"}},
            },
            "admin made bob maintainer of team payments",
        ),
        (
            {
                "action": "approvals.request.expired",
                "actor": "system",
                "object_type": "approvals.approvalrequest",
                "object_repr": "#4 tool onboarding",
            },
            "Request #4 tool onboarding expired",
        ),
        (
            {"action": "approvals.request.submitted", "actor": "bob", "subject": "the request"},
            "bob submitted the request",
        ),
        (
            {
                "action": "catalog.grant.requested",
                "actor": "",
                "object_type": "catalog.toolgrant",
                "object_repr": "a → b",
            },
            "someone requested grant a → b",
        ),
        ({"action": "portal.widget.frobnicated", "actor": "x"}, "x frobnicated widget"),
    ],
)
def test_it_says_what_happened_in_words(event: dict[str, object], sentence: str) -> None:
    assert describe(**event) == sentence  # type: ignore[arg-type]
