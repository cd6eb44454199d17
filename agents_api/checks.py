"""The call-time grant check: catalog.grant_rules.decide over the grant index, and a signal on every denial."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone
from prometheus_client import Counter

from agents_api.grant_index import grant_index
from catalog.grant_rules import GrantDecision, Verdict, decide
from catalog.signals import grant_check_denied

logger = logging.getLogger(__name__)
DEFAULT_ENVIRONMENT = "production"
# The check is mostly answered in front of Django (agents_api.front), so django-prometheus never sees it: counted here.
CHECKS = Counter("portal_grant_checks_total", "Call-time grant checks by verdict", ["verdict"])


def grant_check(
    *,
    agent: str,
    tool: str,
    capability: str | None,
    environment: str = DEFAULT_ENVIRONMENT,
    now: datetime | None = None,
) -> GrantDecision:
    """May `agent` call `capability` of `tool` in `environment` now? Names are the catalog's (case-insensitive)."""
    agent, tool, environment = agent.strip().lower(), tool.strip().lower(), environment.strip().lower()
    capability = (capability or "").strip() or None
    found = grant_index.lookup(agent, tool)
    if found.missing:
        names = {"agent": f"agent {agent!r}", "tool": f"tool {tool!r}"}
        unknown = " and ".join(names[what] for what in found.missing.split(" and "))
        decision = GrantDecision(False, Verdict.NO_GRANT, f"The catalog has no {unknown}; use catalog names.")
    else:
        decision = decide(
            agent=agent,
            tool=tool,
            capability=capability,
            environment=environment,
            grants=found.grants,
            now=now or timezone.now(),
        )
    CHECKS.labels(decision.verdict.value).inc()
    if not decision.allowed:
        for receiver, error in grant_check_denied.send_robust(
            sender=grant_check,
            agent=agent,
            tool=tool,
            capability=capability,
            environment=environment,
            verdict=decision.verdict,
            reason=decision.reason,
            grant_id=decision.grant_id,
        ):
            if isinstance(error, Exception):
                logger.error("grant_check_denied receiver %r failed: %r", receiver, error)
    return decision


def enforce_requested(value: str) -> bool:
    """`?enforce=`: answer a denial with 403 (ext_authz-style callers decide by status)."""
    return value.lower() in {"1", "true", "yes"}


def check_answer(decision: GrantDecision, *, enforce: bool) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body of a decision, whichever way the request came in."""
    body = {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "verdict": decision.verdict.value,
        "grant": decision.grant_id,
        "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
    }
    return (403 if enforce and not decision.allowed else 200), body
