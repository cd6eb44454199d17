"""Example data behind the tools. Replace it with your real backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

# The most sensitive class of data these tools return; it is also in catalog-info.yaml.
DATA_CLASS = "{{ data_class }}"

Status = Literal["open", "closed"]


class Item(BaseModel):
    """One record, as returned to MCP clients."""

    id: str = Field(description="Item identifier.")
    title: str = Field(description="Short human-readable title.")
    status: Status = Field(description="Whether the item is still open.")
    data_class: str = Field(default=DATA_CLASS, description="Classification of this data.")


class ItemList(BaseModel):
    items: list[Item]
    total: int = Field(description="Number of matching items before the limit was applied.")


class ItemNotFoundError(LookupError):
    pass


@dataclass
class ItemStore:
    items: dict[str, Item] = field(default_factory=dict)
    next_number: int = 1

    @classmethod
    def with_examples(cls) -> ItemStore:
        store = cls()
        store.add("Rotate the staging credentials", status="open")
        store.add("Write the on-call runbook", status="closed")
        return store

    def add(self, title: str, status: Status = "open") -> Item:
        item = Item(id=f"item-{self.next_number}", title=title, status=status)
        self.items[item.id] = item
        self.next_number += 1
        return item

    def get(self, item_id: str) -> Item:
        try:
            return self.items[item_id]
        except KeyError:
            raise ItemNotFoundError(item_id) from None

    def remove(self, item_id: str) -> bool:
        return self.items.pop(item_id, None) is not None

    def search(self, status: Status | None) -> list[Item]:
        return [item for item in self.items.values() if status is None or item.status == status]
