from __future__ import annotations

import pytest

from {{ package }}.descriptor import (
    AgentDescriptor,
)
from {{ package }}.tools import (
    Tool,
    ToolNotGrantedError,
    ToolRegistry,
    UnknownToolError,
    echo,
)


def _delete_everything(arguments: dict[str, object]) -> str:
    raise AssertionError("an ungranted tool must never run")


DANGEROUS = Tool(name="delete_everything", description="Nope.", function=_delete_everything)


def test_it_refuses_a_tool_that_is_not_granted() -> None:
    registry = ToolRegistry(granted_tools=["echo"], tools=[Tool("echo", "Echo.", echo), DANGEROUS])
    with pytest.raises(ToolNotGrantedError, match="delete_everything"):
        registry.call("delete_everything", {})


def test_it_only_offers_granted_tools_to_the_model() -> None:
    registry = ToolRegistry(granted_tools=["echo"], tools=[Tool("echo", "Echo.", echo), DANGEROUS])
    assert [tool.name for tool in registry.enabled_tools()] == ["echo"]
    assert registry.call("echo", {"input": "hi"}) == {"echo": "hi"}


def test_it_reports_a_granted_tool_without_implementation() -> None:
    registry = ToolRegistry(granted_tools=["jira"])
    with pytest.raises(UnknownToolError):
        registry.call("jira", {})


def test_it_enables_exactly_the_descriptor_grants(descriptor: AgentDescriptor) -> None:
    registry = ToolRegistry.from_descriptor(descriptor)
    assert registry.granted_tools == frozenset(descriptor.granted_tools)
    assert [tool.name for tool in registry.enabled_tools()] == sorted(descriptor.granted_tools)
    for name in descriptor.granted_tools:
        assert registry.call(name, {"input": "status"}) is not None
    if "echo" not in descriptor.granted_tools:
        with pytest.raises(ToolNotGrantedError):
            registry.call("echo", {"input": "hi"})


def test_it_refuses_a_tool_missing_from_the_descriptor(descriptor: AgentDescriptor) -> None:
    registry = ToolRegistry.from_descriptor(descriptor, tools=[DANGEROUS])
    with pytest.raises(ToolNotGrantedError):
        registry.call("delete_everything", {})
