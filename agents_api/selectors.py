"""Reads for agents and gateways: active grants (what an agent may use, the gateway policy)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from agents_api.policy import PolicyGrant
from catalog.models import Tool, ToolGrant


def active_grants(*, now: datetime | None = None) -> QuerySet[ToolGrant]:
    """Approved grants not yet expired, with their agent and tool."""
    now = now or timezone.now()
    return (
        ToolGrant.objects.filter(status=ToolGrant.Status.APPROVED)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("agent", "tool")
        .order_by("agent__name", "tool__name", "environment")
    )


def policy_grants(*, environment: str, now: datetime | None = None) -> list[PolicyGrant]:
    """The active grants of one environment on MCP servers, as the gateway policy needs them."""
    rows = (
        active_grants(now=now)
        .filter(environment=environment, tool__kind=Tool.Kind.MCP_SERVER)
        .values_list(
            "pk", "agent__name", "tool__name", "capability_names", "expires_at", "tool__endpoint_url", "tool__transport"
        )
    )
    return [
        PolicyGrant(
            grant_id=pk,
            agent=agent,
            tool=tool,
            capability_names=tuple(sorted(capabilities or ())),
            expires_at=expires_at,
            endpoint_url=endpoint_url,
            transport=transport,
        )
        for pk, agent, tool, capabilities, expires_at, endpoint_url, transport in rows
    ]


def requested_grants() -> QuerySet[ToolGrant]:
    """Grants asked for and waiting for approval, with their agent and tool."""
    return (
        ToolGrant.objects.filter(status=ToolGrant.Status.REQUESTED)
        .select_related("agent", "tool")
        .order_by("agent__name", "tool__name", "environment")
    )
