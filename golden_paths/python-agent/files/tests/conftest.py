from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from {{ package }}.descriptor import (
    AgentDescriptor,
    load_descriptor,
)


@pytest.fixture(autouse=True)
def offline_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never talk to a real model and never capture content unless they opt in."""
    for variable in (
        "AGENT_MODEL_PROVIDER",
        "AGENT_MODEL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "AGENT_DESCRIPTOR",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    ):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def tracer(span_exporter: InMemorySpanExporter) -> Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider.get_tracer("tests")


@pytest.fixture
def descriptor() -> AgentDescriptor:
    return load_descriptor()
