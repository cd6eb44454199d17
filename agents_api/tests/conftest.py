from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from catalog import services as catalog

CAPABILITIES = [
    {"name": "get_file", "read_only": True, "open_world": False},
    {"name": "list_issues", "read_only": True, "open_world": False},
    {"name": "create_issue", "destructive": False, "open_world": False},
]


@pytest.fixture
def world(make_user: Callable[..., Any], make_team: Callable[..., Any]) -> dict[str, Any]:
    """A team with a maintainer, an agent and an MCP server with three capabilities."""
    owner = make_user("olive")
    team = make_team("platform", maintainers=[owner])
    agent = catalog.agent_create(
        actor=None,
        data={
            "name": "pr-reviewer",
            "owner": team.name,
            "title": "PR reviewer",
            "description": "Reviews pull requests and comments on them.",
            "lifecycle": "production",
            "agent_type": "code_review",
            "autonomy_level": 2,
            "human_in_loop": "per_action",
            "data_class": "internal",
        },
    )
    tool = catalog.tool_create(
        actor=None,
        data={
            "name": "github-mcp",
            "owner": team.name,
            "title": "GitHub MCP server",
            "description": "Reads repositories and files issues on GitHub.",
            "kind": "mcp_server",
            "transport": "streamable_http",
            "endpoint_url": "https://mcp.example.com/github/mcp",
            "version": "1.0.0",
            "reach": "closed",
            "credential_scope": "delegated",
            "data_class": "internal",
            "capabilities": CAPABILITIES,
        },
    )
    return {"owner": owner, "team": team, "agent": agent, "tool": tool}


@pytest.fixture
def make_grant(world: dict[str, Any]) -> Callable[..., Any]:
    """A grant of the world's tool to its agent, in a status, as the workflow would leave it."""

    def make(
        *,
        capabilities: list[str] | tuple[str, ...] = ("get_file",),
        environment: str = "production",
        status: str = "approved",
        expires_in: timedelta | None = timedelta(days=30),
        tool: Any = None,
    ) -> Any:
        grant, _ = catalog.grant_request(
            actor=None,
            agent=world["agent"],
            tool=tool or world["tool"],
            environment=environment,
            capability_names=list(capabilities),
        )
        if status != "requested":
            expires_at = timezone.now() + expires_in if expires_in is not None else None
            grant = catalog.grant_set_status(grant=grant, status="approved", expires_at=expires_at)
            if status != "approved":
                grant = catalog.grant_set_status(grant=grant, status=status)
        return grant

    return make
