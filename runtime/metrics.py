"""Prometheus figures of runtime governance. Counters are per process (aggregated across gunicorn workers with
PROMETHEUS_MULTIPROC_DIR); the catalog and approvals figures are read from the database at scrape time."""

from __future__ import annotations

from prometheus_client import Counter

SPANS = Counter("portal_runtime_spans_total", "Spans received on /v1/traces by outcome", ["outcome"])
BATCHES = Counter("portal_runtime_batches_total", "OTLP requests on /v1/traces by answer status", ["status"])
