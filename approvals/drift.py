"""Drift of approved MCP servers (Celery beat): what a live server lists must stay what was approved.

For every approved MCP server the portal can speak to (Streamable HTTP), ask for its tools and compare them, hints
included, with the declared capabilities (what its approval was given on: a change of the declaration itself is
reviewed through approvals.rounds). On a difference: the owners are notified and review reopens (a re-review
request naming the differences), once per distinct drift. A server that does not answer is counted and logged,
not reopened: the endpoint check of its next review says so.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from approvals import notifications
from approvals.attestation import hints_evidence, live_url
from approvals.checks import Subject
from approvals.models import OPEN_STATES, ApprovalRequest
from approvals.services import _system
from approvals.submitting import _submit_locked
from catalog.models import Tool
from portal.audit import audit_record
from portal.context import acting_as
from portal.net import SafeHttpClient

logger = logging.getLogger(__name__)
MAX_SERVERS_PER_SCAN = 500


@dataclass
class DriftReport:
    checked: int = 0
    drifted: list[str] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "drifted": len(self.drifted),
            "reopened": len(self.reopened),
            "unreachable": len(self.unreachable),
        }


def drift_check(*, client: SafeHttpClient | None = None) -> DriftReport:
    report = DriftReport()
    servers = Tool.objects.filter(kind=Tool.Kind.MCP_SERVER, status=Tool.Status.APPROVED).order_by("pk")
    http = client or SafeHttpClient()
    for tool in servers.select_related("owner")[:MAX_SERVERS_PER_SCAN]:
        if live_url(tool) is None:
            continue
        report.checked += 1
        evidence = hints_evidence(tool, client=http)  # outside any transaction: the server may be slow
        if evidence.observed is None:
            report.unreachable.append(tool.name)
            logger.warning("drift check of %s: %s", tool.name, evidence.note)
            continue
        if not evidence.differences:
            continue
        report.drifted.append(tool.name)
        request = _drifted(tool, evidence.differences)
        if request is not None:
            report.reopened.append(request.pk)
    return report


def _drifted(tool: Tool, differences: list[str]) -> ApprovalRequest | None:
    """Notify the owners and reopen review, once per distinct set of differences."""
    key = hashlib.sha256("\n".join(sorted(differences)).encode()).hexdigest()[:16]
    listed = "; ".join(differences[:20])
    with transaction.atomic(), acting_as(_system()):
        locked = Tool.objects.select_for_update().select_related("owner").get(pk=tool.pk)
        audit_record(
            action="approvals.drift.detected", target=locked, changes={"differences": differences[:50], "key": key}
        )
        notifications.notify_team(
            locked.owner,
            event="drift",
            subject_line=f"Live MCP server differs from what was approved: {locked.name}",
            body=f"The live server of {locked.name} lists tools or hints that differ from its approved "
            f"capabilities: {listed}. Review reopens.",
            dedupe=f"drift:{locked.pk}:{key}",
        )
        subject = Subject(agent=None, tool=locked, grant=None)
        approved = (
            ApprovalRequest.objects.filter(subject_key=f"tool:{locked.pk}", state=ApprovalRequest.State.APPROVED)
            .select_related("requester")
            .order_by("-decided_at")
            .first()
        )
        if (
            approved is None
            or ApprovalRequest.objects.filter(subject_key=f"tool:{locked.pk}", state__in=OPEN_STATES).exists()
        ):
            return None
        try:
            with transaction.atomic():
                return _submit_locked(
                    approved.requester,
                    ApprovalRequest.Kind.RE_REVIEW,
                    subject,
                    locked.owner_id,
                    f"The live MCP server differs from what was approved: {listed}",
                    False,
                    approved,
                )
        except IntegrityError:
            return None
