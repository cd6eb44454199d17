from __future__ import annotations

from typing import Any

import pytest

from approvals.models import ApprovalRequest
from catalog.models import Agent
from runtime.demo import seed
from runtime.models import Finding, KpiSnapshot, Scorecard, ToolUsageDaily

pytestmark = pytest.mark.django_db


def test_the_demo_seeds_usage_findings_scorecards_and_kpis_once(catalog_setup: Any) -> None:
    assert seed(days=3, calls_per_day=4) > 0
    assert ToolUsageDaily.objects.filter(agent_key="billing-bot", tool_key="github").count() >= 3
    assert Finding.objects.filter(agent_key="shadow-notebook", kind="unknown_agent").exists()
    assert Scorecard.objects.filter(kind="agent", name="billing-bot").exists()
    assert KpiSnapshot.objects.filter(figure="agents_by_tier").values("day").distinct().count() == 4
    # The autonomy gate on demo data: billing-bot's maintainer asked for autonomy 4; it waits for approval.
    request = ApprovalRequest.objects.get(agent__name="billing-bot", kind="autonomy_change")
    assert request.proposed_changes["autonomy_level"]["after"] == 4
    assert Agent.objects.get(name="billing-bot").autonomy_level is None
    assert seed(days=3) == 0
    assert ApprovalRequest.objects.filter(kind="autonomy_change").count() == 1
