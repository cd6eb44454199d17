"""Run the server: ``python -m <package>``. MCP_TRANSPORT picks stdio or streamable_http."""

from __future__ import annotations

import os

from .server import build_server

DEFAULT_TRANSPORT = "{{ transport }}"


def main() -> None:
    transport = os.environ.get("MCP_TRANSPORT", DEFAULT_TRANSPORT)
    server = build_server()
    if transport == "stdio":
        server.run("stdio")
    elif transport == "streamable_http":
        # Loopback by default; the container image sets MCP_HOST to listen on all interfaces.
        host = os.environ.get("MCP_HOST", "127.0.0.1")
        port = int(os.environ.get("MCP_PORT", "8000"))
        server.run("streamable-http", host=host, port=port)
    else:
        raise SystemExit(f"unknown MCP_TRANSPORT {transport!r}; use stdio or streamable_http")


if __name__ == "__main__":
    main()
