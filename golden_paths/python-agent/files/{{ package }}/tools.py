"""Tool registry that enables only the tools this agent has been granted.

Grants come from the descriptor (``spec.consumesApis``), which the portal's request_grants step
gets approved. Implemented-but-ungranted tools stay registered so the refusal is explicit:
calling one raises ``ToolNotGrantedError`` instead of silently doing something.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .descriptor import AgentDescriptor

ToolFunction = Callable[[dict[str, Any]], Any]


class ToolNotGrantedError(PermissionError):
    """The agent asked for a tool that is not in its grants."""


class UnknownToolError(LookupError):
    """The tool is granted but nothing implements it."""


def _default_parameters() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "What the tool should do."}},
        "required": ["input"],
    }


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    function: ToolFunction
    parameters: dict[str, Any] = field(default_factory=_default_parameters)

    def spec(self) -> dict[str, Any]:
        """Function-calling schema handed to the model."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


class ToolRegistry:
    def __init__(self, granted_tools: Iterable[str], tools: Iterable[Tool] = ()) -> None:
        self._granted = frozenset(granted_tools)
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    @classmethod
    def from_descriptor(
        cls, descriptor: AgentDescriptor, tools: Iterable[Tool] | None = None
    ) -> ToolRegistry:
        implementations = list(default_tools(descriptor.granted_tools) if tools is None else tools)
        return cls(granted_tools=descriptor.granted_tools, tools=implementations)

    @property
    def granted_tools(self) -> frozenset[str]:
        return self._granted

    def register(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def is_granted(self, name: str) -> bool:
        return name in self._granted

    def enabled_tools(self) -> list[Tool]:
        """Tools that are both implemented and granted: the only ones offered to the model."""
        return [self._tools[name] for name in sorted(self._tools) if name in self._granted]

    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if name not in self._granted:
            raise ToolNotGrantedError(f"tool {name!r} is not granted to this agent")
        tool = self._tools.get(name)
        if tool is None:
            raise UnknownToolError(f"tool {name!r} is granted but has no implementation")
        return tool.function(arguments)


def echo(arguments: dict[str, Any]) -> dict[str, Any]:
    """A real (if tiny) tool implementation, handy for wiring tests."""
    return {"echo": str(arguments.get("input", ""))}


BUILTIN_TOOLS = (Tool(name="echo", description="Repeat the input back.", function=echo),)


def _stub(name: str) -> ToolFunction:
    def call_stub(arguments: dict[str, Any]) -> dict[str, Any]:
        # TODO: replace with a real client for the granted API.
        return {"tool": name, "status": "stub", "arguments": json.loads(json.dumps(arguments))}

    return call_stub


def default_tools(granted_tools: Iterable[str]) -> list[Tool]:
    """Built-in tools plus a stub for every granted tool that has no implementation yet."""
    tools = {tool.name: tool for tool in BUILTIN_TOOLS}
    for name in granted_tools:
        tools.setdefault(
            name, Tool(name=name, description=f"Call the {name} API.", function=_stub(name))
        )
    return [tools[name] for name in sorted(tools)]
