"""The MCP server: typed tools with behaviour annotations, built on the official MCP SDK."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from . import __version__
from .store import DATA_CLASS, Item, ItemList, ItemNotFoundError, ItemStore, Status
{%- if include_example_write %}
from .write_tools import register_write_tools
{%- endif %}

SERVER_NAME = "{{ name }}"
INSTRUCTIONS = (
    "Tools for looking up items. "
    f"Results are classified {DATA_CLASS}: do not copy them anywhere less protected."
)

# tools.json is the one place where each tool's title, description and MCP hints live; the
# catalog descriptors were generated from the same list. Annotations are hints for clients (for
# example: ask the user before a destructive call). Keep them honest: a tool marked read-only
# must never change anything.
TOOL_SPECS: dict[str, dict[str, Any]] = {
    spec["name"]: spec
    for spec in json.loads(resources.files(__package__).joinpath("tools.json").read_text("utf-8"))
}


def described(name: str) -> dict[str, Any]:
    """Keyword arguments for ``server.tool`` from the tool's entry in tools.json."""
    spec = TOOL_SPECS[name]
    return {
        "name": name,
        "title": spec["title"],
        "description": spec["description"],
        "annotations": ToolAnnotations.model_validate(spec["annotations"]),
    }


ItemId = Annotated[
    str, Field(description="Item identifier, for example item-1.", pattern=r"^item-[0-9]{1,9}$")
]
Limit = Annotated[int, Field(ge=1, le=100, description="Maximum number of items to return.")]


def find_item(store: ItemStore, item_id: str) -> Item:
    try:
        return store.get(item_id)
    except ItemNotFoundError:
        # ToolError text is shown to the client; other exceptions are reported generically.
        raise ToolError(f"No item with id {item_id}.") from None


def build_server(store: ItemStore | None = None) -> MCPServer:
    """A fresh server over ``store`` (example data by default); tests build their own."""
    store = store if store is not None else ItemStore.with_examples()
    server = MCPServer(name=SERVER_NAME, instructions=INSTRUCTIONS, version=__version__)

    @server.tool(**described("list_items"))
    def list_items(status: Status | None = None, limit: Limit = 20) -> ItemList:
        matching = store.search(status)
        return ItemList(items=matching[:limit], total=len(matching))

    @server.tool(**described("get_item"))
    def get_item(item_id: ItemId) -> Item:
        return find_item(store, item_id)
{%- if include_example_write %}

    register_write_tools(server, store)
{%- endif %}

    return server
