"""Presentation helpers shared by every app's templates: audit events in plain words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from portal.activity import describe
from portal.models import AuditEvent

register = template.Library()


@register.filter
def event_sentence(event: AuditEvent | Mapping[str, Any]) -> str:
    """ "alice approved stage Security review" for approvals.decision.approve (portal/activity.py). Takes an
    AuditEvent or a row of its values (the entity pages read those)."""

    def field(name: str) -> Any:
        return event.get(name, "") if isinstance(event, Mapping) else getattr(event, name, "")

    return describe(
        action=str(field("action")),
        actor=str(field("actor_label") or ""),
        object_type=str(field("object_type") or ""),
        object_repr=str(field("object_repr") or ""),
        changes=field("changes"),
    )
