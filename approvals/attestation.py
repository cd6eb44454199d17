"""The trust path for capability hints: a security reviewer attests a tool's declared hints, with the live MCP
server's own `tools/list` as evidence.

The rubric scores unattested hints as the worst case (destructive, open world), so an honest read-only tool is
reviewed as critical until somebody vouches for its hints. Who may: a member of a security role who is not in the
tool's owning team. What is stored (catalog.HintsAttestation): the declared capabilities, what the live server
listed (when it speaks MCP over Streamable HTTP) and the differences. A server that contradicts the declaration is
not attested: its owners correct the declaration (which is a change of facts, reviewed again) first. Any later
change of the capabilities invalidates the attestation (catalog.services.tool_update).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from approvals.mcp_introspect import McpProtocolError, diff_capabilities, introspect_mcp_server
from approvals.models import ApprovalRequest, CheckRun
from approvals.services import MAX_COMMENT, ApprovalConflict, ApprovalError, ApprovalPermissionError
from catalog import attestation as catalog_attestation
from catalog.models import HintsAttestation, TeamMembership, Tool
from catalog.services import CAPABILITY_HINTS, CatalogConflict
from portal.net import FetchError, SafeHttpClient, UnsafeUrlError
from portal.roles import SECURITY_LEAD, SECURITY_REVIEWER, user_has_role
from portal.types import User

ATTESTING_ROLES = (SECURITY_REVIEWER, SECURITY_LEAD)


@dataclass
class HintsEvidence:
    """What the live server said about its tools, or why nothing was asked."""

    observed: list[dict[str, Any]] | None
    note: str = ""
    server: dict[str, Any] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)


def declared_capabilities(tool: Tool) -> list[dict[str, Any]]:
    return [
        {"name": cap.name, **{hint: getattr(cap, hint) for hint in CAPABILITY_HINTS}}
        for cap in tool.capabilities.order_by("name")
    ]


def live_url(tool: Tool) -> str | None:
    """The Streamable HTTP endpoint of an MCP server, the only kind the portal can ask for its tools."""
    if tool.kind != Tool.Kind.MCP_SERVER or tool.transport not in ("", Tool.Transport.STREAMABLE_HTTP):
        return None
    if tool.endpoint_url:
        return tool.endpoint_url
    return next((str(remote["url"]) for remote in tool.remotes if isinstance(remote, dict) and remote.get("url")), None)


def hints_evidence(tool: Tool, *, client: SafeHttpClient | None = None) -> HintsEvidence:
    """Ask the live server for its tools and compare them with the declared capabilities. Never raises for the
    server's sake: an unreachable or broken server is evidence too (nothing observed, and why)."""
    url = live_url(tool)
    if url is None:
        return HintsEvidence(None, "Not an MCP server over Streamable HTTP: there is no live tool list to compare.")
    try:
        result = introspect_mcp_server(url, client=client or SafeHttpClient(), timeout=15)
    except UnsafeUrlError as exc:
        return HintsEvidence(None, f"Endpoint refused by the outbound policy: {exc}")
    except FetchError as exc:
        return HintsEvidence(None, f"{url} did not answer: {exc}")
    except McpProtocolError as exc:
        return HintsEvidence(None, f"{url} does not speak MCP correctly: {exc}")
    observed = [dict(tool_) for tool_ in result.tools]
    return HintsEvidence(
        observed,
        server={
            "url": url,
            "name": result.server_name,
            "version": result.server_version,
            "protocol_version": result.protocol_version,
        },
        differences=diff_capabilities(declared_capabilities(tool), observed),
    )


def attest_refusal(user: User | AnonymousUser, tool: Tool) -> str | None:
    """Why this user may not attest the tool's hints, or None."""
    if not user.is_authenticated:
        return "You must be signed in."
    if not any(user_has_role(user, role) for role in ATTESTING_ROLES):
        return "Attesting capability hints needs the security-reviewer or security-lead role."
    if TeamMembership.objects.filter(team_id=tool.owner_id, user=user).exists():
        return "Nobody attests the hints of their own team's tool."
    return None


def hints_attest(
    *,
    actor: User,
    tool: Tool,
    capabilities_hash: str,
    comment: str = "",
    client: SafeHttpClient | None = None,
) -> HintsAttestation:
    """Attest the tool's hints as the reviewer saw them (`capabilities_hash`); the live server is asked first (no
    transaction is held while it answers) and its answer is stored with the attestation."""
    errors: dict[str, list[str] | str] = {}
    if not capabilities_hash:
        errors["capabilities_hash"] = "is required: the `capabilities_hash` of the capabilities you reviewed."
    if len(comment) > MAX_COMMENT:
        errors["comment"] = f"is {len(comment)} characters; at most {MAX_COMMENT} are accepted."
    if errors:
        raise ApprovalError(errors)
    refusal = attest_refusal(actor, tool)
    if refusal is not None:
        raise ApprovalPermissionError(refusal)
    evidence = hints_evidence(tool, client=client)
    if evidence.differences:
        raise ApprovalConflict(
            f"The live server of {tool.name} differs from its declared capabilities: "
            + "; ".join(evidence.differences[:10])
            + ". Its owners correct the declaration first; then attest again."
        )
    try:
        with transaction.atomic():
            return catalog_attestation.tool_attest_hints(
                tool=tool,
                attested_by=actor,
                capabilities_hash=capabilities_hash,
                observed=evidence.observed,
                observed_note=evidence.note,
                server=evidence.server,
                differences=evidence.differences,
                comment=comment,
            )
    except CatalogConflict as exc:
        raise ApprovalConflict(str(exc)) from exc


def request_tool(request: ApprovalRequest) -> Tool | None:
    """The tool whose hints a request's reviewers judge (its subject, or the grant's tool)."""
    if request.tool_id:
        return Tool.objects.select_related("owner").get(pk=request.tool_id)
    if request.grant_id:
        return Tool.objects.select_related("owner").get(grants__pk=request.grant_id)
    return None


def hints_panel(request: ApprovalRequest, user: User | AnonymousUser) -> dict[str, Any] | None:
    """What the review page and the API show of a tool's hints: declared beside observed (the current round's MCP
    check), the attestation the rubric relies on, and whether this user may attest."""
    tool = request_tool(request)
    if tool is None:
        return None
    declared = declared_capabilities(tool)
    check = (
        CheckRun.objects.filter(request=request, round=request.round, name="mcp_tools")
        .only("status", "summary", "output")
        .first()
    )
    observed_by_name = {str(item.get("name")): item for item in (check.output.get("tools", []) if check else [])}
    rows = [{"name": cap["name"], "declared": cap, "observed": observed_by_name.get(cap["name"])} for cap in declared]
    rows += [
        {"name": name, "declared": None, "observed": item}
        for name, item in sorted(observed_by_name.items())
        if name not in {cap["name"] for cap in declared}
    ]
    refusal = attest_refusal(user, tool)
    current = catalog_attestation.tool_current_attestation(tool)
    return {
        "tool": tool,
        "capabilities_hash": tool.capabilities_hash,
        "rows": rows,
        "check": check,
        "differences": list(check.output.get("differences", [])) if check else [],
        "attestation": current,
        "trusted": tool.annotations_trusted,
        "can_attest": refusal is None and current is None,
        "why_not": refusal,
    }
