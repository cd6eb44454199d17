from __future__ import annotations

from typing import Any

from {{ package }}.portal import (
    PortalClient,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_caches_a_decision_for_a_few_seconds_only(stub_portal: Any) -> None:
    clock = Clock()
    portal = PortalClient(base_url=stub_portal.url, cache_seconds=5, clock=clock)
    ask = {"agent": "a", "tool": "t", "capability": "c", "environment": "production"}

    assert portal.check(**ask).allowed
    stub_portal.allowed = False
    clock.now += 4
    assert portal.check(**ask).allowed  # still cached
    clock.now += 2
    refused = portal.check(**ask)
    assert not refused.allowed
    assert len(stub_portal.checks) == 2


def test_it_fails_closed_when_the_portal_cannot_be_asked() -> None:
    portal = PortalClient(base_url="http://127.0.0.1:9", timeout_seconds=2)
    decision = portal.check(agent="a", tool="t", capability="c", environment="production")
    assert not decision.allowed
    assert "grant check failed" in decision.reason


def test_it_finds_its_granted_servers_in_the_registry(stub_portal: Any) -> None:
    stub_portal.grants = [{"tool": "status-mcp", "capability_names": ["lookup"]}]
    catalog = "io.agentportal/catalog"
    stub_portal.servers = [
        {
            "server": {"remotes": [{"type": "streamable-http", "url": "http://127.0.0.1:1/mcp"}]},
            "_meta": {catalog: {"name": "status-mcp"}},
        },
        {
            "server": {"remotes": [{"type": "streamable-http", "url": "http://127.0.0.1:2/mcp"}]},
            "_meta": {catalog: {"name": "not-granted"}},
        },
    ]
    portal = PortalClient(base_url=stub_portal.url)

    (server,) = portal.granted_servers(agent="a", environment="production")

    assert server.tool == "status-mcp"
    assert server.url == "http://127.0.0.1:1/mcp"
    assert server.capabilities == ("lookup",)
