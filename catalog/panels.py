"""What the catalog hands the apps that add panels to its agent and tool pages (`AppConfig.entity_panels(page)`).

The page reads its entity, what the viewer may do with it and any read two panels both need once, and each panel
takes them from here: asked by each panel on its own, the owning team's membership, the grants and the entity's
approval requests were each read twice per page (bench.catalog, entity page).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from catalog.models import Agent, Tool
from catalog.services import EntityAccess

T = TypeVar("T")


@dataclass
class EntityPage:
    entity: Agent | Tool
    user: AbstractBaseUser | AnonymousUser
    access: EntityAccess
    reads: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_agent(self) -> bool:
        return isinstance(self.entity, Agent)

    def read_once(self, key: str, load: Callable[[], T]) -> T:
        """`load()` the first time a panel asks for `key` on this page; the same answer to the next panel."""
        if key not in self.reads:
            self.reads[key] = load()
        value: T = self.reads[key]
        return value
