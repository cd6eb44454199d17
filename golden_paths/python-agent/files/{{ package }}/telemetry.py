"""OpenTelemetry for the agent: pydantic-ai's GenAI spans (invoke_agent, chat, execute_tool), sent
over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the portal accepts them at ``/v1/traces``).

Prompts, tool arguments and results are not recorded unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``: they may hold personal data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pydantic_ai import Agent
from pydantic_ai.models.instrumented import InstrumentationSettings

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = frozenset({"true", "1", "yes"})


def capture_message_content(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON


def instrumentation(provider: TracerProvider) -> InstrumentationSettings:
    return InstrumentationSettings(
        tracer_provider=provider, include_content=capture_message_content()
    )


def configure_tracing(service_name: str) -> TracerProvider | None:
    """Instrument every agent and export its spans over OTLP/HTTP when an endpoint is configured."""
    if not os.environ.get(ENDPOINT_ENV, "").strip():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads the endpoint itself
    Agent.instrument_all(instrumentation(provider))
    return provider
