from __future__ import annotations

import dataclasses
from typing import Any

from {{ package }}.agent import (
    STEP_LIMIT_MESSAGE,
    Agent,
)
from {{ package }}.approval import (
    approve_all,
)
from {{ package }}.descriptor import (
    AgentDescriptor,
)
from {{ package }}.models import (
    FakeModel,
)
from {{ package }}.tools import (
    Tool,
    ToolRegistry,
)

CALLS: list[dict[str, object]] = []


def lookup(arguments: dict[str, object]) -> str:
    CALLS.append(arguments)
    return "green"


def make_agent(descriptor: AgentDescriptor, **overrides: Any) -> Agent:
    registry = ToolRegistry(granted_tools=["lookup"], tools=[Tool("lookup", "Look up.", lookup)])
    return Agent(descriptor=descriptor, registry=registry, model=FakeModel(), **overrides)


def test_it_answers_without_tools(descriptor: AgentDescriptor) -> None:
    result = make_agent(descriptor).run("ping")
    assert result.output == "Echo: ping"
    assert result.executions == ()


def test_it_asks_a_human_before_each_tool_call(descriptor: AgentDescriptor) -> None:
    CALLS.clear()
    supervised = dataclasses.replace(descriptor, human_in_loop="per_action")
    result = make_agent(supervised).run("use lookup to check the build")
    assert CALLS == []
    assert result.executions[0].approved is False
    assert result.tools_called == ()


def test_it_runs_tools_once_approved(descriptor: AgentDescriptor) -> None:
    CALLS.clear()
    supervised = dataclasses.replace(descriptor, human_in_loop="per_action")
    result = make_agent(supervised, approver=approve_all).run("use lookup to check the build")
    assert CALLS == [{"input": "use lookup to check the build"}]
    assert result.tools_called == ("lookup",)
    assert "green" in result.output


def test_it_acts_alone_when_no_human_is_in_the_loop(descriptor: AgentDescriptor) -> None:
    unsupervised = dataclasses.replace(descriptor, human_in_loop="none")
    result = make_agent(unsupervised).run("use lookup to check the build")
    assert result.tools_called == ("lookup",)


def test_it_stops_at_the_step_limit(descriptor: AgentDescriptor) -> None:
    result = make_agent(descriptor, approver=approve_all, max_steps=1).run("use lookup now")
    assert result.output == STEP_LIMIT_MESSAGE
