"""Attested capability hints: the record of who vouched for a tool's hints, on which evidence.

Who may attest, and the live evidence, are approvals' (approvals.attestation); this writes the record and lets
the rubric trust the hints (catalog.services.tool_attest_annotations, which tells approvals like any change).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.models import HintsAttestation, Tool
from catalog.services import CAPABILITY_HINTS, CatalogConflict, tool_attest_annotations
from portal.audit import audit_record
from portal.types import User


@transaction.atomic(savepoint=False)  # called inside workflows' transactions; no savepoint needed
def tool_attest_hints(
    *,
    tool: Tool,
    attested_by: User,
    capabilities_hash: str,
    observed: list[dict[str, Any]] | None,
    observed_note: str = "",
    server: Mapping[str, Any] | None = None,
    differences: list[str] | None = None,
    comment: str = "",
) -> HintsAttestation:
    """Record that `attested_by` vouches for the tool's capability hints as they are now (`capabilities_hash`, what
    the reviewer saw: a list changed meanwhile is refused), with the live evidence, and let the rubric trust them.
    Who may attest is the caller's rule (approvals: the security roles)."""
    locked = Tool.objects.select_for_update().get(pk=tool.pk)
    if locked.capabilities_hash != capabilities_hash:
        raise CatalogConflict(
            f"The capabilities of {locked.name} changed since you loaded them; reload and review the new list."
        )
    declared = [
        {"name": cap.name, **{hint: getattr(cap, hint) for hint in CAPABILITY_HINTS}}
        for cap in locked.capabilities.order_by("name")
    ]
    _invalidate_attestations_quietly(locked, reason="attested again")
    attestation = HintsAttestation.objects.create(
        tool=locked,
        attested_by=attested_by,
        capabilities_hash=capabilities_hash,
        declared=declared,
        observed=observed,
        observed_note=observed_note[:500],
        server=dict(server or {}),
        differences=list(differences or []),
        comment=comment,
    )
    audit_record(
        action="catalog.tool.hints_attested",
        target=locked,
        changes={
            "capabilities_hash": capabilities_hash,
            "observed": observed is not None,
            "differences": len(differences or []),
            "attestation": attestation.pk,
        },
    )
    tool_attest_annotations(tool=locked, attested=True)
    return attestation


def _invalidate_attestations_quietly(tool: Tool, *, reason: str) -> None:
    """Earlier attestations give way to a new one; the tool's trust flag is left to the caller."""
    HintsAttestation.objects.filter(tool=tool, invalidated_at__isnull=True).update(
        invalidated_at=timezone.now(), invalidated_reason=reason[:300]
    )


def tool_current_attestation(tool: Tool) -> HintsAttestation | None:
    """The attestation the rubric's trust rests on: valid and of the tool's current capabilities, or None."""
    if not tool.annotations_trusted:
        return None
    return (
        HintsAttestation.objects.filter(
            tool=tool, invalidated_at__isnull=True, capabilities_hash=tool.capabilities_hash
        )
        .select_related("attested_by")
        .first()
    )
