from __future__ import annotations

from typing import Any

from django.urls import reverse

from catalog.models import Agent, Team, Tool


def catalog_dashboard_panels(*, user: Any) -> list[dict[str, Any]]:
    return [
        {"title": "Agents", "value": Agent.objects.count(), "url": reverse("catalog:index") + "?kind=agent"},
        {"title": "Tools", "value": Tool.objects.count(), "url": reverse("catalog:index") + "?kind=tool"},
        {"title": "Teams", "value": Team.objects.count(), "url": reverse("catalog:index")},
    ]
