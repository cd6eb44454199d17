"""The agent: a pydantic-ai Agent whose tools are the granted MCP servers' tools.

At each run it asks the portal which approved MCP servers it holds a grant for, connects to
them with the official MCP SDK and offers their tools to the model; every call is checked
with the portal first (see ``mcp_tools``), so only a grant active at that moment lets it run.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from pydantic_ai import Agent
from pydantic_ai.models import Model
from pydantic_ai.toolsets import FunctionToolset

from . import telemetry
from .approval import Approver, approve_all, deny_all
from .descriptor import AgentDescriptor, load_descriptor
from .mcp_tools import CallLog, CallRecord, ToolTarget, connect_tools
from .portal import PortalClient

MODEL_ENV = "AGENT_MODEL"
ENVIRONMENT_ENV = "AGENT_ENVIRONMENT"
INSTRUCTIONS = (
    "You are {name}, an AI agent owned by {owner}. {description} "
    "Only use the tools you are offered; if a call is refused, say so and do not retry it."
)


@dataclass(frozen=True)
class AgentResult:
    output: str
    calls: tuple[CallRecord, ...] = ()

    @property
    def tools_called(self) -> tuple[str, ...]:
        """Tools that actually ran (allowed by the portal and, if asked, by a human)."""
        return tuple(call.capability for call in self.calls if call.allowed)


def build_agent(descriptor: AgentDescriptor, model: Model | str | None = None) -> Agent[None, str]:
    chosen = model or os.environ.get(MODEL_ENV) or descriptor.model
    return Agent(
        chosen,
        name=descriptor.name,
        instructions=INSTRUCTIONS.format(
            name=descriptor.name, owner=descriptor.owner, description=descriptor.description
        ),
    )


def default_approver(descriptor: AgentDescriptor) -> Approver:
    return deny_all if descriptor.requires_approval else approve_all


async def run(
    prompt: str,
    *,
    descriptor: AgentDescriptor | None = None,
    model: Model | str | None = None,
    portal: PortalClient | None = None,
    targets: list[ToolTarget] | None = None,
    approver: Approver | None = None,
    tracer_provider: TracerProvider | None = None,
    environment: str | None = None,
) -> AgentResult:
    """Run the agent once. ``targets`` default to the granted servers the portal lists."""
    descriptor = descriptor or load_descriptor()
    environment = environment or os.environ.get(ENVIRONMENT_ENV) or descriptor.environments[0]
    agent = build_agent(descriptor, model)
    if tracer_provider is not None:
        agent.instrument = telemetry.instrumentation(tracer_provider)
    log = CallLog()
    async with AsyncExitStack() as stack:
        toolsets = []
        if portal is not None or targets is None:
            portal = portal or PortalClient.from_environment()
            if targets is None:
                servers = portal.granted_servers(agent=descriptor.name, environment=environment)
                targets = [ToolTarget(tool=server.tool, target=server.url) for server in servers]
            tools = await connect_tools(
                targets,
                stack=stack,
                portal=portal,
                agent=descriptor.name,
                environment=environment,
                approver=approver or default_approver(descriptor),
                log=log,
            )
            toolsets.append(FunctionToolset(tools))
        result = await agent.run(prompt, toolsets=toolsets)
    return AgentResult(output=str(result.output), calls=tuple(log.calls))
