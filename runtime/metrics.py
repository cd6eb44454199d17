"""Prometheus figures of runtime governance. Counters are per process (aggregated across gunicorn workers with
PROMETHEUS_MULTIPROC_DIR); the catalog and approvals figures are read from the database at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from portal.metrics import database_collectors

logger = logging.getLogger(__name__)
# Spans of decoded batches: accepted (stored), ignored (not GenAI/MCP), refused (429: the sender retries them).
# Batches refused before their spans were read (401, 403, 400, 413, 415) count in BATCHES by status.
SPANS = Counter("portal_runtime_spans_total", "Spans received on /v1/traces by outcome", ["outcome"])
BATCHES = Counter("portal_runtime_batches_total", "OTLP requests on /v1/traces by answer status", ["status"])


class GovernanceCollector:
    """The KPI page's figures at scrape time, from the same functions (runtime.kpis). A scrape never fails because
    the database cannot answer: the process metrics still go out, with portal_governance_metrics_up 0."""

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self._from_database())
        except Exception:  # any failure to read the figures: report it as a metric, keep the scrape
            logger.warning("governance metrics could not be read from the database", exc_info=True)
            metrics = []
        yield GaugeMetricFamily(
            "portal_governance_metrics_up",
            "Whether the database-backed figures could be read",
            value=int(bool(metrics)),
        )
        yield from metrics

    def _from_database(self) -> Iterator[Metric]:
        from runtime import kpis

        requests = GaugeMetricFamily("portal_approval_requests", "Approval requests by state", labels=["state"])
        for state, count in kpis.requests_by_state().items():
            requests.add_metric([state], count)
        yield requests
        yield GaugeMetricFamily(
            "portal_approval_sla_breaches", "Requests in review past their stage's due time", value=kpis.sla_breaches()
        )
        hours = kpis.approval_hours()
        buckets = [(str(float(bound)), sum(1 for h in hours if h <= bound)) for bound in kpis.APPROVAL_HOURS_BUCKETS]
        buckets.append(("+Inf", len(hours)))
        yield HistogramMetricFamily(
            "portal_approval_time_to_approval_hours",
            "Hours from submission to approval (requests approved in the last 90 days)",
            buckets=buckets,
            sum_value=sum(hours),
        )
        sla = GaugeMetricFamily(
            "portal_approval_sla_attainment_ratio", "Decisions within the stage SLA, last 90 days", labels=["stage"]
        )
        for stage, (met, total) in kpis.sla_attainment().items():
            sla.add_metric([stage], met / total if total else 1.0)
        yield sla
        findings = GaugeMetricFamily("portal_runtime_findings_open", "Open runtime findings by kind", labels=["kind"])
        for kind, count in kpis.open_findings_by_kind().items():
            findings.add_metric([kind], count)
        yield findings
        tiers = GaugeMetricFamily("portal_catalog_entities", "Agents and tools by risk tier", labels=["kind", "tier"])
        for kind, counts in kpis.tier_counts().items():
            for tier, count in counts.items():
                tiers.add_metric([kind, tier], count)
        yield tiers


database_collectors.append(GovernanceCollector())
