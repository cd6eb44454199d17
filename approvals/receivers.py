"""Catalog changes that raise a subject's tier above what was approved reopen review."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from approvals.checks import Subject
from approvals.services import reopen_if_riskier
from catalog.models import Agent, Tool, ToolGrant
from catalog.signals import entity_changed
from portal.context import current_actor


@receiver(entity_changed)
def reopen_review_on_riskier_change(sender: Any, instance: Agent | Tool, **kwargs: Any) -> None:
    from django.contrib.auth import get_user_model

    actor = current_actor()
    user = get_user_model().objects.filter(pk=actor.user_id).first() if actor.user_id else None
    if isinstance(instance, Tool):
        reopen_if_riskier(subject=Subject(agent=None, tool=instance, grant=None), changed_by=user)
        grants = ToolGrant.objects.filter(tool=instance, status=ToolGrant.Status.APPROVED).select_related(
            "agent", "tool"
        )
    else:
        reopen_if_riskier(subject=Subject(agent=instance, tool=None, grant=None), changed_by=user)
        grants = ToolGrant.objects.filter(agent=instance, status=ToolGrant.Status.APPROVED).select_related(
            "agent", "tool"
        )
    for grant in grants:
        reopen_if_riskier(subject=Subject(agent=grant.agent, tool=grant.tool, grant=grant), changed_by=user)
