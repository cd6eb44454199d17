"""The agent's view of the portal: which MCP servers it may use, and whether a call is allowed now.

- ``GET /v0.1/servers`` lists the approved MCP servers (the portal's MCP registry);
- ``GET /api/v1/grants/?agent=<name>&environment=<env>`` lists this agent's grants, whatever their
  status: the agent connects to those servers, but only the call-time check decides what runs;
- ``POST /api/v1/grants/check/`` answers, before each tool call, whether the grant is active now
  (a revoked or expired grant is refused even though the agent was started with it). Answers are
  cached for a few seconds (``GRANT_CHECK_CACHE_SECONDS``); anything but an explicit "allowed"
  refuses the call.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PORTAL_URL_ENV = "PORTAL_URL"
# The name of the variable holding an API token with the read scope (never commit the token).
PORTAL_TOKEN_ENV = "PORTAL_TOKEN"  # noqa: S105 - a variable name, not a secret
CACHE_SECONDS_ENV = "GRANT_CHECK_CACHE_SECONDS"
CATALOG_META = "io.agentportal/catalog"
REMOTE_TYPES = ("streamable-http",)


class PortalError(RuntimeError):
    """The portal could not be asked (not configured, unreachable, or an unexpected answer)."""


@dataclass(frozen=True)
class GrantedServer:
    """An approved MCP server this agent holds a grant for, and where to reach it."""

    tool: str  # the catalog name, which the grant check names
    url: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    grant: int | None = None
    expires_at: str | None = None


@dataclass
class PortalClient:
    base_url: str
    token: str = ""
    cache_seconds: float = 5.0
    timeout_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _decisions: dict[tuple[str, str, str, str], tuple[float, Decision]] = field(
        default_factory=dict
    )

    @classmethod
    def from_environment(cls) -> PortalClient:
        base_url = os.environ.get(PORTAL_URL_ENV, "").strip()
        if not base_url:
            raise PortalError(
                f"{PORTAL_URL_ENV} is not set: the agent needs the portal to find its tools."
            )
        return cls(
            base_url=base_url,
            token=os.environ.get(PORTAL_TOKEN_ENV, ""),
            cache_seconds=float(os.environ.get(CACHE_SECONDS_ENV, "5")),
        )

    def granted_servers(self, *, agent: str, environment: str) -> list[GrantedServer]:
        """Approved MCP servers ``agent`` holds a grant for in ``environment``, in any status:
        whether a call may go ahead is asked at call time, so a revoked grant is refused too."""
        query = urllib.parse.urlencode({"agent": agent, "environment": environment})
        grants = self._get(f"/api/v1/grants/?{query}").get("results", [])
        granted = {
            str(grant["tool"]): tuple(grant.get("capability_names") or ()) for grant in grants
        }
        servers = []
        for entry in self._get("/v0.1/servers").get("servers", []):
            name = str((entry.get("_meta") or {}).get(CATALOG_META, {}).get("name", ""))
            remotes = [
                r for r in entry["server"].get("remotes", []) if r.get("type") in REMOTE_TYPES
            ]
            if name in granted and remotes:
                servers.append(
                    GrantedServer(tool=name, url=str(remotes[0]["url"]), capabilities=granted[name])
                )
        return servers

    def check(self, *, agent: str, tool: str, capability: str, environment: str) -> Decision:
        key = (agent, tool, capability, environment)
        cached = self._decisions.get(key)
        now = self.clock()
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            answer = self._post(
                "/api/v1/grants/check/",
                {
                    "agent": agent,
                    "tool": tool,
                    "capability": capability,
                    "environment": environment,
                },
            )
            decision = Decision(
                allowed=answer.get("allowed") is True,
                reason=str(answer.get("reason", "")),
                grant=answer.get("grant"),
                expires_at=answer.get("expires_at"),
            )
        except PortalError as error:
            # Fail closed, and do not cache: the next call asks again.
            return Decision(allowed=False, reason=f"the portal's grant check failed: {error}")
        self._decisions[key] = (now, decision)
        return decision

    def _get(self, path: str) -> dict[str, Any]:
        return self._send(urllib.request.Request(self._url(path), method="GET"))  # noqa: S310

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(self._url(path), data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/json")
        return self._send(request)

    def _url(self, path: str) -> str:
        # Only http(s): urllib would otherwise also open file: and custom schemes.
        if not self.base_url.startswith(("https://", "http://")):
            raise PortalError(f"{PORTAL_URL_ENV} must be an http(s) URL")
        return self.base_url.rstrip("/") + path

    def _send(self, request: urllib.request.Request) -> dict[str, Any]:
        request.add_header("Accept", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310 - scheme checked
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            raise PortalError(f"{request.full_url} answered HTTP {error.code}") from error
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise PortalError(f"{request.full_url}: {error}") from error
