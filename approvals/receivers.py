"""Approvals listen to the catalog's one signal for changes of facts (approvals.rounds says what happens)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.dispatch import receiver

from approvals import rounds
from catalog.models import Agent, Tool
from catalog.signals import entity_changed
from portal.context import current_actor


@receiver(entity_changed)
def review_again_on_changed_facts(sender: Any, instance: Agent | Tool, **kwargs: Any) -> None:
    actor = current_actor()
    user = get_user_model().objects.filter(pk=actor.user_id).first() if actor.user_id else None
    rounds.facts_changed(instance=instance, changed_by=user)
