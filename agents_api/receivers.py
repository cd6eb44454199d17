"""Every grant change, and every agent or tool added or deleted, sets the grant index's generation anew, in the
changing transaction (see grant_index).

Receivers on the models' own signals rather than in catalog services, so no door (services, admin, cascades from a
deleted agent or tool) is missed. What sends no signal: bulk inserts (imports) of agents and tools, after which the
check may still call a new name unknown rather than ungranted (a denial either way: grants come one at a time, from
grant_request), and `QuerySet.update()`, used by approvals' nightly expiry alone, which only marks expired a grant
the check already denies by its date.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from agents_api.grant_index import generation_bump, grant_index
from catalog.models import Agent, Tool, ToolGrant


@receiver(post_save, sender=ToolGrant, dispatch_uid="agents_api.grant_saved")
@receiver(post_save, sender=Agent, dispatch_uid="agents_api.agent_saved")
@receiver(post_save, sender=Tool, dispatch_uid="agents_api.tool_saved")
@receiver(post_delete, sender=ToolGrant, dispatch_uid="agents_api.grant_deleted")
@receiver(post_delete, sender=Agent, dispatch_uid="agents_api.agent_deleted")
@receiver(post_delete, sender=Tool, dispatch_uid="agents_api.tool_deleted")
def grant_index_invalidate(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):  # loaddata: no index to keep yet
        return
    if sender is not ToolGrant and kwargs.get("created") is False:
        return  # an agent's or tool's name never changes: only a new or deleted one changes what the index knows
    generation_bump()
    # This process need not wait for its next scheduled read: now (its own connection sees the change) and after
    # the commit (its other threads' connections see it then).
    grant_index.expire()
    transaction.on_commit(grant_index.expire)
