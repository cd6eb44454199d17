"""Every grant change moves the grant index's generation, in the changing transaction (see grant_index).

Receivers on the model's own signals rather than in catalog services, so no door (services, admin, cascades from a
deleted agent or tool) is missed. Bulk `QuerySet.update()` sends no signal: the one such write, approvals' nightly
expiry, only turns an already-lapsed grant's status to expired, which the check already denies by its date.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from agents_api.grant_index import generation_bump
from catalog.models import Agent, Tool, ToolGrant


@receiver(post_save, sender=ToolGrant, dispatch_uid="agents_api.grant_saved")
@receiver(post_delete, sender=ToolGrant, dispatch_uid="agents_api.grant_deleted")
@receiver(post_delete, sender=Agent, dispatch_uid="agents_api.agent_deleted")
@receiver(post_delete, sender=Tool, dispatch_uid="agents_api.tool_deleted")
def grant_index_invalidate(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):  # loaddata: no index to keep yet
        return
    generation_bump()
