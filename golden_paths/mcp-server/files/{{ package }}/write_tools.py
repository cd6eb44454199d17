"""Example write tools: one additive, one destructive. Delete what you do not need."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import BaseModel, Field

from .store import Item, ItemStore

# Their hints are in tools.json: create_item changes state but destroys nothing (a retry adds
# another item); delete_item is destructive (clients should confirm first) and idempotent.

Title = Annotated[str, Field(min_length=1, max_length=200, description="Title of the new item.")]
ItemId = Annotated[str, Field(description="Item identifier.", pattern=r"^item-[0-9]{1,9}$")]


class DeleteResult(BaseModel):
    id: str
    deleted: bool = Field(description="False when the item did not exist (nothing to do).")


def register_write_tools(server: MCPServer, store: ItemStore) -> None:
    from .server import described

    @server.tool(**described("create_item"))
    def create_item(title: Title) -> Item:
        return store.add(title)

    @server.tool(**described("delete_item"))
    def delete_item(item_id: ItemId) -> DeleteResult:
        return DeleteResult(id=item_id, deleted=store.remove(item_id))
