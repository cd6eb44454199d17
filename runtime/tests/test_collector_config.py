from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings


def test_the_documented_collector_batches_and_sends_to_v1_traces_with_a_bearer_token() -> None:
    config = yaml.safe_load((Path(settings.BASE_DIR) / "docs" / "otel-collector.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert "batch" in pipeline["processors"]
    batch = config["processors"]["batch"]
    assert 100 <= batch["send_batch_size"] <= batch["send_batch_max_size"] <= 1000
    (exporter_name,) = pipeline["exporters"]
    exporter = config["exporters"][exporter_name]
    assert exporter_name.startswith("otlphttp")  # otlphttp appends /v1/traces to the endpoint
    assert exporter["encoding"] in ("proto", "json") and exporter["compression"] == "gzip"
    assert exporter["headers"]["Authorization"].startswith("Bearer ${env:")
    assert exporter["retry_on_failure"]["enabled"] is True
    deleted = {action["key"] for action in config["processors"]["attributes/drop-content"]["actions"]}
    assert {"gen_ai.input.messages", "gen_ai.output.messages"} <= deleted
    assert "attributes/drop-content" in pipeline["processors"]


def test_the_collector_target_is_the_portals_traces_route() -> None:
    from django.urls import resolve

    assert resolve("/v1/traces").url_name == "otlp-traces"
