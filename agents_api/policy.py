"""The active grants as an agentgateway configuration, for a gateway that cannot call the check at call time.

Pure: plain grant facts in, the config out (the shape of agentgateway's `schema/config.json`): the granted MCP
servers as `mcp.targets` and one CEL rule per grant in `mcp.policies.mcpAuthorization.rules`, e.g.

    jwt.sub == "pr-reviewer" && mcp.tool.target == "github-mcp" && mcp.tool.name in ["add_comment"]
        && request.startTime < timestamp("2027-01-01T00:00:00Z")

agentgateway allows a call when any rule holds, so a tool no rule names is refused. Grants that cover no
capability give no rule, as the check allows nothing for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Where the gateway finds the calling agent's catalog name: a verified JWT's subject by default.
DEFAULT_IDENTITY = "jwt.sub"
# A CEL field path (jwt.sub, source.identity.serviceAccount): the only expression a caller may choose.
IDENTITY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
TRANSPORT_TARGETS = {"streamable_http": "mcp", "sse": "sse"}


@dataclass(frozen=True)
class PolicyGrant:
    grant_id: int
    agent: str
    tool: str
    capability_names: tuple[str, ...]
    expires_at: datetime | None
    endpoint_url: str
    transport: str


def _literal(value: str) -> str:
    # A JSON string is a valid CEL string literal (same quotes and escapes).
    return json.dumps(value)


def grant_rule(grant: PolicyGrant, *, identity: str = DEFAULT_IDENTITY) -> str:
    names = ", ".join(_literal(name) for name in grant.capability_names)
    rule = f"{identity} == {_literal(grant.agent)} && mcp.tool.target == {_literal(grant.tool)} && mcp.tool.name in [{names}]"
    if grant.expires_at is not None:
        until = grant.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rule += f" && request.startTime < timestamp({_literal(until)})"
    return rule


def agentgateway_config(grants: Iterable[PolicyGrant], *, identity: str = DEFAULT_IDENTITY) -> dict[str, Any]:
    grants = sorted(grants, key=lambda grant: (grant.tool, grant.agent, grant.grant_id))
    targets: dict[str, dict[str, Any]] = {}
    for grant in grants:
        kind = TRANSPORT_TARGETS.get(grant.transport)
        if kind and grant.endpoint_url and grant.tool not in targets:
            targets[grant.tool] = {"name": grant.tool, kind: {"host": grant.endpoint_url}}
    rules = [grant_rule(grant, identity=identity) for grant in grants if grant.capability_names]
    return {
        "mcp": {
            "targets": list(targets.values()),
            "policies": {"mcpAuthorization": {"rules": rules}},
        }
    }
