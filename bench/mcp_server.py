"""A local MCP test server in its own process for benchmarks: prints its URL, serves until stdin closes.

Run: `python -m bench.mcp_server` (used by bench.approvals; the checks call it as they would a real server).
"""

from __future__ import annotations

import sys

from portal.testing.servers import McpTestServer, McpToolSpec

SERVED = [McpToolSpec(name="read_status", read_only=True, open_world=False, idempotent=True)]


def main() -> None:
    with McpTestServer(SERVED) as server:
        print(server.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
