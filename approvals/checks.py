"""The automated checks run before people review. Each returns a CheckResult; none writes to the database.

A check that cannot reach its target raises CheckTransientError: the task retries it with backoff and, after the
last attempt, records an error. Nothing passes silently.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from approvals.mcp_introspect import McpIntrospection, McpProtocolError, diff_capabilities, introspect_mcp_server
from catalog import risk
from catalog.models import Agent, Team, TeamMembership, Tool, ToolGrant
from catalog.scoring import agent_facts, grant_assessment, tool_facts
from portal.net import FetchError, SafeHttpClient, UnsafeUrlError


class CheckTransientError(Exception):
    """The check could not get an answer (timeout, refused): retry, then report an error."""


@dataclass
class CheckResult:
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Subject:
    agent: Agent | None
    tool: Tool | None
    grant: ToolGrant | None
    # The agent's facts an autonomy change asks for ({field: {"before", "after"}}), held by the catalog until the
    # request is approved: the checks, the risk and the fingerprint read the agent as it would be.
    proposed: dict[str, Any] = field(default_factory=dict)

    @property
    def entity(self) -> Agent | Tool:
        entity = self.tool if self.tool is not None else self.agent
        assert entity is not None
        return entity

    @property
    def reviewed_agent(self) -> Agent | None:
        """The agent with the proposed facts applied (an unsaved copy), or the agent itself when none are."""
        if not self.proposed or self.agent is None:
            return self.agent
        agent = copy.copy(self.agent)
        for name, change in self.proposed.items():
            setattr(agent, name, change["after"])
        return agent


def proposed_agent_assessment(subject: Subject) -> risk.Assessment:
    """The risk the agent would have with the proposed facts: its own and its active grants', re-scored."""
    agent = subject.reviewed_agent
    assert agent is not None and subject.agent is not None
    now = timezone.now()
    active = []
    for grant in (
        subject.agent.grants.select_related("tool")
        .prefetch_related("tool__capabilities")
        .filter(status=ToolGrant.Status.APPROVED)
    ):
        if grant.expires_at is None or grant.expires_at > now:
            grant.agent = agent
            active.append((grant.tool.name, grant_assessment(grant)))
    return risk.assess_agent(agent_facts(agent), active)


UNPINNED = re.compile(r"^(latest|\*|x|)$|[\^~><=*|]|\.x\b|\s-\s", re.IGNORECASE)
SECRET_PATTERNS = {
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "GitLab token": re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "OpenAI-style key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}\b"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "bearer credential": re.compile(r"\bBearer\s+[A-Za-z0-9_\-\.=]{20,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"),
    "password in URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE),
}


def check_descriptor_complete(subject: Subject) -> CheckResult:
    entity = subject.entity
    missing = [label for label, present in _required_facts(subject) if not present]
    if missing:
        return CheckResult(False, f"{entity.name}: missing {', '.join(missing)}.", {"missing": missing})
    return CheckResult(True, "All required facts are declared.")


def _required_facts(subject: Subject) -> list[tuple[str, bool]]:
    entity = subject.entity
    facts = [("a description", bool(entity.description.strip())), ("a data class", entity.data_class is not None)]
    if isinstance(entity, Tool):
        facts += [
            ("a version", bool(entity.version)),
            ("its reach", entity.reach is not None),
            ("its credential scope", entity.credential_scope is not None),
            ("at least one capability", entity.capabilities.exists()),
        ]
        if entity.kind in (Tool.Kind.MCP_SERVER, Tool.Kind.HTTP_API) and entity.transport != Tool.Transport.STDIO:
            located = entity.endpoint_url or entity.packages or entity.remotes or entity.definition.strip()
            facts.append(("an endpoint URL, a package, remotes or an API definition", bool(located)))
    else:
        facts += [
            ("an autonomy level", entity.autonomy_level is not None),
            ("human-in-the-loop", entity.human_in_loop is not None),
        ]
    return facts


def check_owner(subject: Subject) -> CheckResult:
    team_name, maintainers = _owner_team(subject.entity.owner_id)
    if not maintainers:
        return CheckResult(False, f"Owner team {team_name} has no active maintainer.", {"team": team_name})
    return CheckResult(True, f"Owner team {team_name} exists and has {maintainers} maintainer(s).")


def _owner_team(team_id: int) -> tuple[str, int]:
    """The team's name and how many active maintainers it has: one row per maintainer, with the team's name (the
    name alone is read only for a team without any)."""
    names = list(
        TeamMembership.objects.filter(
            team_id=team_id, role=TeamMembership.Role.MAINTAINER, user__is_active=True
        ).values_list("team__name", flat=True)
    )
    if not names:
        return str(Team.objects.filter(pk=team_id).values_list("name", flat=True).get()), 0
    return str(names[0]), len(names)


def check_versions_pinned(subject: Subject) -> CheckResult:
    versions: list[tuple[str, str]] = []
    entity = subject.entity
    if entity.version or isinstance(entity, Tool):
        versions.append(("version", entity.version))
    if isinstance(entity, Tool):
        for index, package in enumerate(entity.packages):
            versions.append((f"packages[{index}].version", str(package.get("version") or "")))
    problems = [f"{where} {value!r} is not pinned" for where, value in versions if UNPINNED.search(value or "")]
    if problems:
        return CheckResult(
            False, "Versions must be exact (no 'latest', no ranges): " + "; ".join(problems), {"problems": problems}
        )
    if not versions:
        return CheckResult(True, "No versions declared to pin.")
    return CheckResult(True, "Versions are pinned: " + ", ".join(f"{w}={v}" for w, v in versions))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def check_no_secrets(subject: Subject) -> CheckResult:
    entity = subject.entity
    fields: dict[str, Any] = {
        "description": entity.description,
        "annotations": entity.annotations,
        "links": entity.links,
    }
    if isinstance(entity, Tool):
        fields |= {
            "definition": entity.definition,
            "packages": entity.packages,
            "remotes": entity.remotes,
            "endpoint_url": entity.endpoint_url,
        }
    else:
        fields |= {"a2a_endpoint": entity.a2a_endpoint, "skills": entity.skills}
    findings = []
    for field_name, value in fields.items():
        for text in _strings(value):
            for label, pattern in SECRET_PATTERNS.items():
                if pattern.search(text):
                    findings.append(f"{field_name}: looks like a {label}")
    if findings:
        unique = sorted(set(findings))
        return CheckResult(
            False,
            "Secret values found in the descriptor; declare secrets by name only: " + "; ".join(unique),
            {"findings": unique},
        )
    return CheckResult(True, "No secret values in the descriptor.")


def _endpoint(subject: Subject) -> str | None:
    entity = subject.entity
    if isinstance(entity, Tool):
        if entity.endpoint_url:
            return entity.endpoint_url
        for remote in entity.remotes:
            if remote.get("url"):
                return str(remote["url"])
        return None
    return entity.a2a_endpoint or None


def _streamable_mcp_url(subject: Subject) -> str | None:
    """The endpoint of an MCP server spoken to over Streamable HTTP, or None for anything else."""
    entity = subject.entity
    if not isinstance(entity, Tool) or entity.kind != Tool.Kind.MCP_SERVER:
        return None
    if entity.transport not in ("", Tool.Transport.STREAMABLE_HTTP):
        return None
    return _endpoint(subject)


def _refused(url: str, exc: UnsafeUrlError) -> CheckResult:
    return CheckResult(False, f"Endpoint refused by the outbound policy: {exc}", {"url": url})


def _endpoint_answered(url: str, status: int) -> CheckResult:
    if status >= 500:
        raise CheckTransientError(f"{url} answered HTTP {status}")
    return CheckResult(True, f"{url} answered HTTP {status}.", {"url": url, "status": status})


def check_endpoint_reachable(subject: Subject, client: SafeHttpClient | None = None) -> CheckResult:
    url = _endpoint(subject)
    if url is None:
        return CheckResult(True, "No network endpoint declared (package or stdio tool); nothing to reach.")
    client = client or SafeHttpClient()
    try:
        if _streamable_mcp_url(subject) is not None:
            response = client.post(
                url,
                json={"jsonrpc": "2.0", "id": 0, "method": "ping"},
                headers={"Accept": "application/json, text/event-stream"},
                timeout=10,
                max_bytes=1024 * 1024,
            )
        else:
            response = client.get(url, timeout=10, max_bytes=1024 * 1024)
    except UnsafeUrlError as exc:
        return _refused(url, exc)
    except FetchError as exc:
        raise CheckTransientError(f"{url} did not answer: {exc}") from exc
    return _endpoint_answered(url, response.status)


def check_mcp_tools(subject: Subject, client: SafeHttpClient | None = None) -> CheckResult:
    entity = subject.entity
    if not isinstance(entity, Tool) or entity.kind != Tool.Kind.MCP_SERVER:
        return CheckResult(True, "Not an MCP server.")
    url = _streamable_mcp_url(subject)
    if url is None:
        return CheckResult(True, "No Streamable HTTP endpoint to introspect.")
    try:
        result = introspect_mcp_server(url, client=client or SafeHttpClient(), timeout=15)
    except UnsafeUrlError as exc:
        return _refused(url, exc)
    except FetchError as exc:
        raise CheckTransientError(f"{url} did not answer: {exc}") from exc
    except McpProtocolError as exc:
        return _not_mcp(url, exc)
    return _served_tools_match(entity, result)


def _not_mcp(url: str, exc: McpProtocolError) -> CheckResult:
    return CheckResult(False, f"The server does not speak MCP correctly: {exc}", {"url": url})


def _served_tools_match(tool: Tool, result: McpIntrospection) -> CheckResult:
    declared = [
        {
            "name": c.name,
            "read_only": c.read_only,
            "destructive": c.destructive,
            "idempotent": c.idempotent,
            "open_world": c.open_world,
        }
        for c in tool.capabilities.all()
    ]
    differences = diff_capabilities(declared, result.tools)
    details = {
        "server": result.server_name,
        "protocol_version": result.protocol_version,
        "tools": result.tools,
        "differences": differences,
    }
    if differences:
        return CheckResult(
            False,
            f"{len(differences)} difference(s) between declared and served tools: " + "; ".join(differences[:10]),
            details,
        )
    return CheckResult(True, f"{len(result.tools)} tool(s) served match the declared capabilities.", details)


Outcome = CheckResult | CheckTransientError


def _endpoint_and_mcp_tools(subject: Subject, url: str, client: SafeHttpClient) -> tuple[Outcome, Outcome]:
    """Both network checks of a Streamable HTTP MCP server from one handshake: the server's HTTP answer to
    `initialize` is the evidence that the endpoint answers (as the `ping` was), and the rest of the handshake
    is the MCP check's. Each keeps its own outcome: an endpoint that does not answer, or answers 5xx, is the
    endpoint check's transient error whatever the MCP check makes of it."""
    tool = subject.entity
    assert isinstance(tool, Tool)
    answered: list[int] = []
    mcp: Outcome
    try:
        result = introspect_mcp_server(
            url, client=client, timeout=15, initialize_answered=lambda response: answered.append(response.status)
        )
    except UnsafeUrlError as exc:
        mcp = _refused(url, exc)
        if not answered:
            return _refused(url, exc), mcp
    except FetchError as exc:
        mcp = CheckTransientError(f"{url} did not answer: {exc}")
        if not answered:
            return CheckTransientError(f"{url} did not answer: {exc}"), mcp
    except McpProtocolError as exc:
        mcp = _not_mcp(url, exc)
    else:
        mcp = _served_tools_match(tool, result)
    endpoint: Outcome
    try:
        endpoint = _endpoint_answered(url, answered[0])
    except CheckTransientError as exc:
        endpoint = exc
    return endpoint, mcp


def check_risk(subject: Subject) -> CheckResult:
    if subject.grant is not None:
        assessment = grant_assessment(subject.grant)
    elif subject.tool is not None:
        assessment = risk.assess_tool(tool_facts(subject.tool))
    elif subject.proposed:
        assessment = proposed_agent_assessment(subject)
    else:
        assert subject.agent is not None
        assessment = risk.assess_agent(agent_facts(subject.agent))
    return CheckResult(True, assessment.explain(), {"assessment": assessment.to_dict()})


CHECKS: dict[str, Callable[[Subject], CheckResult]] = {
    "descriptor_complete": check_descriptor_complete,
    "owner_has_maintainer": check_owner,
    "versions_pinned": check_versions_pinned,
    "no_secrets": check_no_secrets,
    "endpoint_reachable": check_endpoint_reachable,
    "mcp_tools": check_mcp_tools,
    "risk_recomputed": check_risk,
}
# The checks that talk to the subject's server: a round runs them on one keep-alive session (run_round).
NetworkCheck = Callable[[Subject, SafeHttpClient | None], CheckResult]
_NETWORK_CHECKS: dict[Callable[[Subject], CheckResult], NetworkCheck] = {
    check: check for check in (check_endpoint_reachable, check_mcp_tools)
}


def run_check(name: str, subject: Subject, client: SafeHttpClient | None = None) -> CheckResult:
    """Run one check; network checks use `client` when given (a round's session)."""
    check = CHECKS[name]
    network_check = _NETWORK_CHECKS.get(check)
    if client is not None and network_check is not None:
        return network_check(subject, client)
    return check(subject)


def run_round(names: Iterable[str], subject: Subject, client: SafeHttpClient) -> dict[str, Outcome]:
    """Run the named checks on one keep-alive session (`client`); each gets its own outcome, a transient
    failure included. When the endpoint and MCP checks both run against a Streamable HTTP MCP server, one
    handshake serves both (a request fewer, and the server sees one conversation instead of two)."""
    names = list(names)
    outcomes: dict[str, Outcome] = {}
    mcp_url = _streamable_mcp_url(subject)
    if mcp_url is not None and "endpoint_reachable" in names and "mcp_tools" in names:
        outcomes["endpoint_reachable"], outcomes["mcp_tools"] = _endpoint_and_mcp_tools(subject, mcp_url, client)
    for name in names:
        if name in outcomes:
            continue
        try:
            outcomes[name] = run_check(name, subject, client)
        except CheckTransientError as exc:
            outcomes[name] = exc
    return outcomes


CHECK_TITLES = {
    "descriptor_complete": "Descriptor complete",
    "owner_has_maintainer": "Owner team has a maintainer",
    "versions_pinned": "Versions pinned",
    "no_secrets": "No secret values",
    "endpoint_reachable": "Endpoint answers",
    "mcp_tools": "MCP tools match",
    "risk_recomputed": "Risk tier recomputed",
}


# Checks other plugins contribute (runtime: autonomy evidence): name -> when it applies to a (kind, subject).
CONTRIBUTED: dict[str, Callable[[str, Subject], bool]] = {}


def register_check(
    name: str, title: str, check: Callable[[Subject], CheckResult], applies: Callable[[str, Subject], bool]
) -> None:
    """Add a plugin's check (from its AppConfig.ready): it runs, is recorded and sends requests back like ours."""
    CHECKS[name], CHECK_TITLES[name], CONTRIBUTED[name] = check, title, applies


def checks_for(kind: str, subject: Subject) -> list[str]:
    return _built_in_checks_for(kind, subject) + [
        name for name, applies in CONTRIBUTED.items() if applies(kind, subject)
    ]


def _built_in_checks_for(kind: str, subject: Subject) -> list[str]:
    """Grants and recertifications of grants look at the tool and the pairing; onboarding looks at everything."""
    if subject.grant is not None:
        return ["owner_has_maintainer", "risk_recomputed"]
    names = [
        "descriptor_complete",
        "owner_has_maintainer",
        "versions_pinned",
        "no_secrets",
        "endpoint_reachable",
        "risk_recomputed",
    ]
    if subject.tool is not None and subject.tool.kind == Tool.Kind.MCP_SERVER:
        names.insert(5, "mcp_tools")
    return names
