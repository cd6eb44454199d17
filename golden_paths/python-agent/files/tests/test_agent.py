from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

from {{ package }}.agent import (
    run,
)
from {{ package }}.approval import (
    approve_all,
)
from {{ package }}.mcp_tools import (
    ToolTarget,
)
from {{ package }}.portal import (
    PortalClient,
)


def calls_lookup(messages: list[Any], info: Any) -> ModelResponse:
    """A scripted model: call the lookup tool once, then report what it returned."""
    last = messages[-1].parts[-1]
    if isinstance(last, ToolReturnPart):
        return ModelResponse(parts=[TextPart(f"lookup said: {last.content}")])
    return ModelResponse(parts=[ToolCallPart("lookup", {"service": "checkout"})])


def run_with(stub_portal: Any, mcp_server: Any, descriptor: Any, **kwargs: Any) -> Any:
    """One run against the stub portal and the in-process server; unsupervised unless told."""
    portal = PortalClient(base_url=stub_portal.url, cache_seconds=0)
    chosen = kwargs.pop("as_descriptor", dataclasses.replace(descriptor, human_in_loop="none"))
    return asyncio.run(
        run(
            "how is checkout?",
            descriptor=chosen,
            model=FunctionModel(calls_lookup),
            portal=portal,
            targets=[ToolTarget(tool="status-mcp", target=mcp_server)],
            **kwargs,
        )
    )


def test_it_calls_an_mcp_tool_the_portal_allows(
    stub_portal, mcp_server, lookups, descriptor
) -> None:
    result = run_with(stub_portal, mcp_server, descriptor)

    assert lookups.calls == ["checkout"]
    assert result.tools_called == ("lookup",)
    assert "green" in result.output
    (check,) = stub_portal.checks
    assert check == {
        "agent": descriptor.name,
        "tool": "status-mcp",
        "capability": "lookup",
        "environment": descriptor.environments[0],
    }


def test_it_refuses_a_call_the_portal_does_not_allow(
    stub_portal, mcp_server, lookups, descriptor
) -> None:
    stub_portal.allowed, stub_portal.reason = False, "the grant was revoked"

    result = run_with(stub_portal, mcp_server, descriptor)

    assert lookups.calls == []  # the server never saw the call
    assert result.tools_called == ()
    assert [(call.allowed, call.reason) for call in result.calls] == [
        (False, "the grant was revoked")
    ]
    assert "refused" in result.output


def test_it_asks_a_human_when_the_descriptor_says_so(
    stub_portal, mcp_server, lookups, descriptor
) -> None:
    supervised = dataclasses.replace(descriptor, human_in_loop="per_action")
    refused = run_with(stub_portal, mcp_server, descriptor, as_descriptor=supervised)
    assert lookups.calls == []
    assert refused.calls[0].reason == "a human did not approve this call"

    approved = run_with(
        stub_portal, mcp_server, descriptor, as_descriptor=supervised, approver=approve_all
    )
    assert approved.tools_called == ("lookup",)


def test_it_traces_the_run_with_genai_spans(stub_portal, mcp_server, descriptor, spans) -> None:
    provider, exporter = spans
    run_with(stub_portal, mcp_server, descriptor, tracer_provider=provider)

    by_name = {span.name: span for span in exporter.get_finished_spans()}
    agent_span = by_name[f"invoke_agent {descriptor.name}"]
    assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent_span.attributes["gen_ai.agent.name"] == descriptor.name
    tool_span = by_name["execute_tool lookup"]
    assert tool_span.attributes["gen_ai.tool.name"] == "lookup"
    assert tool_span.parent is not None
    # Content is not captured unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is on.
    assert "checkout" not in str(dict(tool_span.attributes))
