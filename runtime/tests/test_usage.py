"""An agent's usage adds up its daily rows across environments, capabilities and days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from runtime import selectors
from runtime.models import ModelUsageDaily, ToolUsageDaily

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 10)


def _tool_row(day: date, tool: str, capability: str, environment: str, **counts: Any) -> None:
    ToolUsageDaily.objects.create(
        agent_key="billing-bot", day=day, tool_key=tool, capability=capability, environment=environment, **counts
    )


def test_it_adds_up_usage_across_environments_capabilities_and_days(catalog_setup: Any) -> None:
    seen = datetime(2026, 3, 9, 12, tzinfo=UTC)
    _tool_row(TODAY, "github", "create_issue", "production", calls=8, errors=1, denied=0, last_seen=seen, le_50ms=8)
    _tool_row(TODAY, "github", "create_issue", "staging", calls=2, errors=1, denied=1, last_seen=seen, le_1000ms=2)
    later = seen + timedelta(hours=20)
    _tool_row(
        TODAY - timedelta(days=1), "github", "delete_repo", "staging", calls=5, errors=0, denied=5, last_seen=later
    )
    _tool_row(TODAY, "jira", "", "production", calls=4, errors=2, denied=0, last_seen=None, le_5ms=4)
    _tool_row(TODAY - timedelta(days=30), "github", "create_issue", "production", calls=100, errors=0, denied=0)
    for environment, tokens in (("production", 1_000_000), ("staging", 1_000_000)):
        ModelUsageDaily.objects.create(
            agent_key="billing-bot", day=TODAY, model="gpt-4o", environment=environment, calls=3, errors=1,
            input_tokens=tokens, output_tokens=50_000,
        )  # fmt: skip
    ModelUsageDaily.objects.create(
        agent_key="billing-bot", day=TODAY, model="a-local-model", environment="production", calls=1, errors=0
    )

    usage = selectors.agent_usage(agent=catalog_setup["agent"], days=30, today=TODAY)

    assert usage["totals"] | {"p50_ms": None, "p95_ms": None} == {
        "calls": 19,
        "errors": 4,
        "denied": 6,
        "error_rate": round(4 / 19, 4),
        "p50_ms": None,
        "p95_ms": None,
        "estimated_cost_usd": 6.0,  # 2M in at $2.5 + 0.1M out at $10; no price for the local model
    }
    github, jira = usage["tools"]
    assert (github["tool"], github["calls"], github["errors"], github["denied"]) == ("github", 15, 2, 6)
    assert github["capabilities"] == {"create_issue": 10, "delete_repo": 5}
    assert github["last_seen"] == later and github["granted"] and not jira["granted"]
    assert 25 < github["p95_ms"] <= 1000 and jira["p95_ms"] <= 5 and jira["capabilities"] == {}
    assert usage["called_not_granted"] == ["jira"]
    assert [(m["model"], m["calls"], m["errors"], m["input_tokens"]) for m in usage["models"]] == [
        ("a-local-model", 1, 0, 0),
        ("gpt-4o", 6, 2, 2_000_000),
    ]
    assert usage["models"][0]["estimated_cost_usd"] is None
    assert usage["trend"][-2:] == [
        {"day": TODAY - timedelta(days=1), "calls": 5, "errors": 0},
        {"day": TODAY, "calls": 14, "errors": 4},
    ]
