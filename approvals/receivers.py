"""Approvals listen to the catalog's one signal for changes of facts (approvals.rounds says what happens); owner
changes are told to both teams."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.dispatch import receiver

from approvals import rounds
from approvals.notifications import notify_team
from catalog.models import Agent, Team, Tool
from catalog.signals import entity_changed, owner_changed
from portal.context import current_actor


@receiver(entity_changed)
def review_again_on_changed_facts(sender: Any, instance: Agent | Tool, **kwargs: Any) -> None:
    actor = current_actor()
    user = get_user_model().objects.filter(pk=actor.user_id).first() if actor.user_id else None
    rounds.facts_changed(instance=instance, changed_by=user)


@receiver(owner_changed)
def notify_both_teams_of_an_owner_change(
    sender: Any, instance: Agent | Tool, previous_owner: Team, owner: Team, **kwargs: Any
) -> None:
    """The maintainers of the team that lost the entity and of the team that got it hear who moved it."""
    kind = "agent" if isinstance(instance, Agent) else "tool"
    actor = current_actor()
    subject_line = f"{kind} {instance.name} moved from team {previous_owner.name} to {owner.name}"
    body = (
        f"{actor.label} changed the owner of {kind} {instance.name} from team {previous_owner.name} to team "
        f"{owner.name}. If this is not expected, ask a platform admin; the audit trail has the details."
    )
    dedupe = f"owner:{kind}:{instance.pk}:{previous_owner.pk}->{owner.pk}:{instance.updated_at.isoformat()}"
    for team in (previous_owner, owner):
        notify_team(team, event="owner_changed", subject_line=subject_line, body=body, dedupe=f"{dedupe}:{team.pk}")
