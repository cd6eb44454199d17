"""An MCP tool server scaffolded by Agent Portal from the mcp-server golden path."""

__version__ = "0.1.0"
