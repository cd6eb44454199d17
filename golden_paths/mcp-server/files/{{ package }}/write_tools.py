"""Example write tools: one additive, one destructive. Delete what you do not need."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from .store import Item, ItemStore

# Adds a record: changes state, but never destroys anything, and a retry adds another one.
ADDITIVE = ToolAnnotations(
    read_only_hint=False,
    destructive_hint=False,
    idempotent_hint=False,
    open_world_hint=False,
)
# Removes a record: clients should confirm with the user first. Deleting twice is harmless.
DESTRUCTIVE = ToolAnnotations(
    read_only_hint=False,
    destructive_hint=True,
    idempotent_hint=True,
    open_world_hint=False,
)

Title = Annotated[str, Field(min_length=1, max_length=200, description="Title of the new item.")]
ItemId = Annotated[str, Field(description="Item identifier.", pattern=r"^item-[0-9]{1,9}$")]


class DeleteResult(BaseModel):
    id: str
    deleted: bool = Field(description="False when the item did not exist (nothing to do).")


def register_write_tools(server: MCPServer, store: ItemStore) -> None:
    @server.tool(title="Create item", annotations=ADDITIVE)
    def create_item(title: Title) -> Item:
        """Create a new open item."""
        return store.add(title)

    @server.tool(title="Delete item", annotations=DESTRUCTIVE)
    def delete_item(item_id: ItemId) -> DeleteResult:
        """Permanently delete an item. This cannot be undone."""
        return DeleteResult(id=item_id, deleted=store.remove(item_id))
