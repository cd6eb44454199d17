from __future__ import annotations

from typing import Any

import pytest

from runtime.demo import seed
from runtime.models import Finding, KpiSnapshot, Scorecard, ToolUsageDaily

pytestmark = pytest.mark.django_db


def test_the_demo_seeds_usage_findings_scorecards_and_kpis_once(catalog_setup: Any) -> None:
    assert seed(days=3, calls_per_day=4) > 0
    assert ToolUsageDaily.objects.filter(agent_key="billing-bot", tool_key="github").count() >= 3
    assert Finding.objects.filter(agent_key="shadow-notebook", kind="unknown_agent").exists()
    assert Scorecard.objects.filter(kind="agent", name="billing-bot").exists()
    assert KpiSnapshot.objects.filter(figure="agents_by_tier").values("day").distinct().count() == 4
    assert seed(days=3) == 0
