"""The MCP servers' tools as pydantic-ai tools, reached with the official MCP SDK client.

Every call first asks the portal's grant check (``PortalClient.check``); a refused call never
reaches the server and the model is told why.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from mcp import Client
from pydantic_ai import Tool

from .approval import Approver
from .portal import Decision, PortalClient


@dataclass(frozen=True)
class CallRecord:
    """One tool call the model asked for and what became of it."""

    tool: str
    capability: str
    allowed: bool
    reason: str


@dataclass
class CallLog:
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def made(self) -> tuple[str, ...]:
        return tuple(call.capability for call in self.calls if call.allowed)


@dataclass(frozen=True)
class ToolTarget:
    """An MCP server to connect to: a Streamable HTTP URL (or, in tests, an in-process server)."""

    tool: str
    target: Any


async def connect_tools(
    targets: list[ToolTarget],
    *,
    stack: AsyncExitStack,
    portal: PortalClient,
    agent: str,
    environment: str,
    approver: Approver,
    log: CallLog,
) -> list[Tool[Any]]:
    """Open a session per server (closed with ``stack``) and wrap each of its tools."""
    tools: list[Tool[Any]] = []
    for target in targets:
        client = await stack.enter_async_context(Client(target.target))
        for listed in (await client.list_tools()).tools:
            guarded = _guarded_call(
                client, target.tool, listed.name, portal, agent, environment, approver, log
            )
            tools.append(
                Tool.from_schema(
                    guarded,
                    name=listed.name,
                    description=listed.description or listed.title or listed.name,
                    json_schema=listed.input_schema,
                )
            )
    return tools


def _guarded_call(
    client: Client,
    tool: str,
    capability: str,
    portal: PortalClient,
    agent: str,
    environment: str,
    approver: Approver,
    log: CallLog,
) -> Any:
    async def call(**arguments: Any) -> Any:
        decision = portal.check(
            agent=agent, tool=tool, capability=capability, environment=environment
        )
        if decision.allowed and not approver(capability, arguments):
            decision = Decision(allowed=False, reason="a human did not approve this call")
        log.calls.append(CallRecord(tool, capability, decision.allowed, decision.reason))
        if not decision.allowed:
            return {"refused": True, "reason": decision.reason}
        result = await client.call_tool(capability, arguments)
        if result.is_error:
            return {"error": " ".join(getattr(part, "text", "") for part in result.content)}
        if result.structured_content is not None:
            return result.structured_content
        return json.loads(json.dumps([getattr(part, "text", "") for part in result.content]))

    return call
