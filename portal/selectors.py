from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from portal.models import AuditEvent
from portal.types import User


def audit_events(
    *, object_type: str = "", object_id: str = "", action: str = "", actor: str = ""
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    if action:
        events = events.filter(action__startswith=action)
    if actor:
        events = events.filter(actor_label__icontains=actor)
    return events.order_by("-id")


def dashboard_summary(*, user: User | AnonymousUser) -> dict[str, Any]:
    """Numbers for the home page; each plugin contributes through its own selectors."""
    summary: dict[str, Any] = {"panels": []}
    from django.apps import apps

    for config in apps.get_app_configs():
        contribute = getattr(config, "dashboard_panels", None)
        if contribute is not None:
            summary["panels"].extend(contribute(user))
    return summary
