from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from mcp import Client
from mcp.server import MCPServer

from {{ package }}.server import (
    build_server,
)


@pytest.fixture
def server() -> MCPServer:
    return build_server()


@pytest.fixture
def with_client(server: MCPServer) -> Callable[[Callable[[Client], Awaitable[Any]]], Any]:
    """Run ``action(client)`` against the server in-process, through the real MCP protocol."""

    def run(action: Callable[[Client], Awaitable[Any]]) -> Any:
        async def connect_and_run() -> Any:
            async with Client(server) as client:
                return await action(client)

        return asyncio.run(connect_and_run())

    return run
