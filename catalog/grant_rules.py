"""The call-time rule: may this agent call this capability of this tool in this environment now?

Pure: no ORM. The call-time check (`POST /api/v1/grants/check/`, the portal's MCP server), runtime findings and the
golden-path agent all ask this one function, so "allowed" means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """Why a call is allowed or not. Denials double as runtime finding kinds."""

    ALLOWED = "allowed"
    NO_GRANT = "no_grant"
    ENVIRONMENT_NOT_GRANTED = "environment_not_granted"
    CAPABILITY_NOT_GRANTED = "capability_not_granted"
    GRANT_PENDING = "grant_pending"
    GRANT_DENIED = "grant_denied"
    GRANT_REVOKED = "grant_revoked"
    GRANT_EXPIRED = "grant_expired"


@dataclass(frozen=True, slots=True)
class GrantFacts:
    """What the rule needs of one grant of an (agent, tool) pair."""

    grant_id: int
    environment: str
    status: str  # ToolGrant.Status value
    capability_names: tuple[str, ...]  # the capabilities the grant covers; empty covers none
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class GrantDecision:
    allowed: bool
    verdict: Verdict
    reason: str
    grant_id: int | None = None
    expires_at: datetime | None = None


def _covers(grant: GrantFacts, capability: str | None) -> bool:
    # A call that names no capability (a gateway that only knows the tool) needs a grant that covers something.
    if capability is None or capability == "":
        return bool(grant.capability_names)
    return capability in grant.capability_names


def decide(
    *,
    agent: str,
    tool: str,
    capability: str | None,
    environment: str,
    grants: Iterable[GrantFacts],
    now: datetime,
) -> GrantDecision:
    """Allowed only for an approved, unexpired grant in `environment` that covers `capability`.

    `grants` are all grants of the (agent, tool) pair, in any environment. Denials name the closest grant, so an
    operator reads "expired at ..." or "granted only in staging" rather than "no grant".
    """
    grants = list(grants)
    in_env = [grant for grant in grants if grant.environment == environment]
    if not in_env:
        others = sorted({grant.environment for grant in grants})
        if others:
            return GrantDecision(
                False,
                Verdict.ENVIRONMENT_NOT_GRANTED,
                f"agent {agent!r} has no grant for tool {tool!r} in environment {environment!r}; "
                f"its grants are for {', '.join(others)}.",
            )
        return GrantDecision(False, Verdict.NO_GRANT, f"agent {agent!r} has no grant for tool {tool!r}.")
    grant = in_env[0]  # one grant per agent, tool and environment (a database constraint)
    ref: dict[str, Any] = {"grant_id": grant.grant_id, "expires_at": grant.expires_at}
    what = f"grant #{grant.grant_id} ({agent} -> {tool}, {environment})"
    if grant.status == "approved" and grant.expires_at is not None and grant.expires_at <= now:
        return GrantDecision(False, Verdict.GRANT_EXPIRED, f"{what} expired at {grant.expires_at.isoformat()}.", **ref)
    status_verdicts = {
        "requested": (Verdict.GRANT_PENDING, "is requested and not approved yet"),
        "denied": (Verdict.GRANT_DENIED, "was denied"),
        "revoked": (Verdict.GRANT_REVOKED, "was revoked"),
        "expired": (Verdict.GRANT_EXPIRED, "has expired"),
    }
    if grant.status in status_verdicts:
        verdict, words = status_verdicts[grant.status]
        return GrantDecision(False, verdict, f"{what} {words}.", **ref)
    if grant.status != "approved":
        return GrantDecision(False, Verdict.NO_GRANT, f"{what} has unknown status {grant.status!r}.", **ref)
    if not _covers(grant, capability):
        covered = ", ".join(grant.capability_names) or "nothing"
        return GrantDecision(
            False,
            Verdict.CAPABILITY_NOT_GRANTED,
            f"{what} does not cover capability {capability!r}; it covers {covered}.",
            **ref,
        )
    return GrantDecision(True, Verdict.ALLOWED, f"{what} is approved and covers {capability!r}.", **ref)
