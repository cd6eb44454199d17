"""Django's object-permission API answers as `services.can_edit` does for the owners of agents and tools.

The owning team's maintainers may change an agent or tool because they maintain its owner; no row per entity
says so (migration 0007). This backend makes `user.has_perm("catalog.change_tool", tool)` true for them, so
code that asks Django's standard question (the admin, DRF's object permissions, a template's `perms`) gets the
same answer as the services. Guardian's backend, after it, answers for permissions given explicitly.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend

from catalog.models import Agent, Tool
from catalog.teams import maintains_team


def _change_permission(obj: Any) -> str | None:
    if isinstance(obj, Agent | Tool):
        return f"catalog.change_{obj._meta.model_name}"
    return None


class OwningTeamBackend(BaseBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        permission = _change_permission(obj)
        if permission is None or not user_obj.is_active or user_obj.is_anonymous:
            return set()
        return {permission} if maintains_team(user_id=user_obj.pk, team_id=obj.owner_id) else set()

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return perm == _change_permission(obj) and perm in self.get_all_permissions(user_obj, obj)
