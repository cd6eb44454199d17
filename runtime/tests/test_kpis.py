from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from runtime import charts, kpis
from runtime.models import KpiSnapshot
from runtime.tests.otlp_builders import as_json, chat, tool_call

pytestmark = pytest.mark.django_db
SERVER = "io.github.example/github"


@pytest.fixture
def activity(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> Any:
    secret, _ = telemetry_token()
    spans = [tool_call("billing-bot", "create_issue", server=SERVER)] * 5 + [tool_call("rogue-bot", "x", server=SERVER)]
    spans += [chat("billing-bot", "gpt-4o")]
    assert post_spans(as_json(spans), secret).status_code == 200
    return catalog_setup


def test_the_snapshot_writes_todays_rows_once(activity: Any) -> None:
    kpis.kpis_snapshot()
    first = KpiSnapshot.objects.count()
    kpis.kpis_snapshot()
    assert KpiSnapshot.objects.count() == first
    today = timezone.now().date()
    assert KpiSnapshot.objects.get(day=today, figure="agents_by_tier", label=activity["agent"].risk_tier).value == 1
    assert KpiSnapshot.objects.get(day=today, figure="findings_open", label="unknown_agent").value == 1


def test_the_dashboard_figures(activity: Any) -> None:
    KpiSnapshot.objects.create(
        day=timezone.now().date() - timedelta(days=3), figure="agents_by_tier", label="high", value=4
    )
    kpis.kpis_snapshot()
    data = kpis.dashboard()
    assert data["top_agents"] == [("billing-bot", 6), ("rogue-bot", 1)]
    assert data["findings_opened_per_day"][-1][1] == 1
    assert "high" in data["agents_by_tier"]


def test_the_kpi_page_renders_svg_charts_without_javascript(activity: Any, client: Any) -> None:
    kpis.kpis_snapshot()
    client.force_login(activity["alice"])
    page = client.get("/runtime/kpis/").content.decode()
    assert page.count('data-testid="kpi-figure"') == 9
    assert page.count("<svg") == 9 and "<script" not in page.split("<main")[-1].split("</main>")[0]
    assert "billing-bot" in page


def test_chart_labels_are_escaped() -> None:
    svg = charts.bar_chart([("<script>alert(1)</script>", 3)], title="t")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    line = charts.line_chart({"<b>": [("2026-01-01", 1.0)]}, title="<x>")
    assert "<b>" not in line and "&lt;x&gt;" in line


def test_metrics_expose_the_same_figures(activity: Any, client: Any) -> None:
    body = client.get("/metrics").content.decode()
    assert 'portal_runtime_findings_open{kind="unknown_agent"} 1.0' in body
    assert "portal_approval_time_to_approval_hours_bucket" in body
    assert "portal_approval_sla_breaches 0.0" in body
    assert 'portal_runtime_spans_total{outcome="accepted"}' in body
    assert "portal_catalog_entities{" in body
    assert "portal_governance_metrics_up 1.0" in body


def test_open_requests_by_age_buckets(catalog_setup: Any) -> None:
    from approvals.models import ApprovalRequest

    now = timezone.now()
    for age_days, state in (
        (0, "in_review"),
        (3, "checking"),
        (10, "in_review"),
        (40, "changes_requested"),
        (2, "approved"),
    ):
        ApprovalRequest.objects.create(
            kind="agent_onboarding",
            state=state,
            agent=catalog_setup["agent"],
            subject_key=f"k{age_days}",
            title="t",
            requester=catalog_setup["alice"],
            owning_team=catalog_setup["team"],
            tier="low",
            created_at=now - timedelta(days=age_days, hours=1),
        )
    assert kpis.open_requests_by_age(now=now) == [("< 1 day", 1), ("1-7 days", 1), ("7-30 days", 1), ("> 30 days", 1)]
