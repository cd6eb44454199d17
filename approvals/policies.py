"""Approval policies per risk tier: the defaults seeded at install, the snapshot a request keeps, and the
audited update by a platform admin."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from approvals.models import ApprovalPolicy, PolicyStage
from approvals.services import OWNER_ATTESTATION_ROLE, ApprovalError, ApprovalPermissionError
from portal.audit import audit_record
from portal.roles import (
    BUSINESS_OWNER,
    DATA_OWNER,
    SECURITY_LEAD,
    SECURITY_REVIEWER,
    user_is_platform_admin,
)
from portal.types import User

DEFAULT_POLICIES: dict[str, dict[str, Any]] = {
    "low": {
        "auto_approve": True,
        "requires_attestation": True,
        "validity_days": 365,
        "exclude_owning_team": False,
        "description": "Automatic after checks plus the owner's attestation; valid 12 months.",
        "stages": [],
    },
    "medium": {
        "auto_approve": False,
        "requires_attestation": False,
        "validity_days": 365,
        "exclude_owning_team": False,
        "description": "One security reviewer; valid 12 months.",
        "stages": [("Security review", SECURITY_REVIEWER, 48)],
    },
    "high": {
        "auto_approve": False,
        "requires_attestation": False,
        "validity_days": 180,
        "exclude_owning_team": True,
        "description": "A security reviewer and a data owner, two different people; valid 6 months.",
        "stages": [("Security review", SECURITY_REVIEWER, 48), ("Data owner", DATA_OWNER, 72)],
    },
    "critical": {
        "auto_approve": False,
        "requires_attestation": False,
        "validity_days": 90,
        "exclude_owning_team": True,
        "description": "Security lead, data owner and an accountable business owner; valid 90 days.",
        "stages": [
            ("Security lead", SECURITY_LEAD, 24),
            ("Data owner", DATA_OWNER, 48),
            ("Business owner", BUSINESS_OWNER, 48),
        ],
    },
}


@transaction.atomic
def policies_seed_defaults() -> None:
    """Create the default policy per tier; existing (possibly edited) policies are left alone."""
    for tier, spec in DEFAULT_POLICIES.items():
        policy, created = ApprovalPolicy.objects.get_or_create(
            tier=tier,
            defaults={
                key: spec[key]
                for key in (
                    "auto_approve",
                    "requires_attestation",
                    "validity_days",
                    "exclude_owning_team",
                    "description",
                )
            },
        )
        if created:
            for order, (name, role, sla) in enumerate(spec["stages"]):
                PolicyStage.objects.create(policy=policy, order=order, name=name, role=role, sla_hours=sla)
            audit_record(
                action="approvals.policy.created",
                target=policy,
                changes={"tier": tier, "stages": [s[1] for s in spec["stages"]]},
            )


def policy_snapshot(tier: str) -> dict[str, Any]:
    """The tier's policy as the request keeps it (later edits do not change open requests). One query: a row
    per stage, or one row with empty stage columns."""
    rows = list(
        ApprovalPolicy.objects.filter(tier=tier)
        .order_by("stages__order")
        .values(
            "auto_approve",
            "requires_attestation",
            "validity_days",
            "exclude_owning_team",
            "stages__name",
            "stages__role",
            "stages__sla_hours",
        )
    )
    if not rows:
        policies_seed_defaults()
        return policy_snapshot(tier)
    first = rows[0]
    return {
        "tier": tier,
        "auto_approve": first["auto_approve"],
        "requires_attestation": first["requires_attestation"],
        "validity_days": first["validity_days"],
        "exclude_owning_team": first["exclude_owning_team"],
        "stages": [
            {"name": row["stages__name"], "role": row["stages__role"], "sla_hours": row["stages__sla_hours"]}
            for row in rows
            if row["stages__role"] is not None
        ],
    }


@transaction.atomic
def policy_update(
    *, actor: User, policy: ApprovalPolicy, data: dict[str, Any], stages: list[dict[str, Any]] | None = None
) -> ApprovalPolicy:
    if not user_is_platform_admin(actor):
        raise ApprovalPermissionError("Only platform admins edit approval policies.")
    from django.contrib.auth.models import Group

    errors: dict[str, list[str] | str] = {}
    if "validity_days" in data:
        try:
            if not 1 <= int(data["validity_days"]) <= 730:
                errors["validity_days"] = "must be between 1 and 730 days."
        except (TypeError, ValueError):
            errors["validity_days"] = "must be a whole number of days."
    known_roles = set(Group.objects.values_list("name", flat=True)) | {OWNER_ATTESTATION_ROLE}
    for index, stage in enumerate(stages or []):
        name, role = str(stage.get("name") or ""), str(stage.get("role") or "")
        if not name or not role or len(name) > 100 or len(role) > 80:
            errors[f"stages[{index}]"] = "needs a name (at most 100 characters) and a role (a group, at most 80)."
        elif role not in known_roles:
            errors[f"stages[{index}].role"] = f"{role!r} is not a group; nobody could decide this stage."
        try:
            if not 1 <= int(stage.get("sla_hours") or 0) <= 24 * 30:
                errors[f"stages[{index}].sla_hours"] = "must be between 1 and 720 hours."
        except (TypeError, ValueError):
            errors[f"stages[{index}].sla_hours"] = "must be a whole number of hours."
    if data.get("auto_approve") and stages:
        errors["auto_approve"] = "an automatic policy has no human stages; remove the stages or turn it off."
    auto_approve = bool(data.get("auto_approve", policy.auto_approve))
    stage_count = len(stages) if stages is not None else policy.stages.count()
    if not auto_approve and stage_count == 0:
        # Nobody could ever decide such a request: it would wait in checking for ever.
        errors["stages"] = (
            f"the {policy.tier} tier is not approved automatically, so it needs at least one review stage "
            "(or set auto_approve)."
        )
    if errors:
        raise ApprovalError(errors)
    before = policy_snapshot(policy.tier)
    for key in ("auto_approve", "requires_attestation", "validity_days", "exclude_owning_team", "description"):
        if key in data:
            setattr(policy, key, data[key])
    policy.save()
    if stages is not None:
        policy.stages.all().delete()
        for order, stage in enumerate(stages):
            PolicyStage.objects.create(
                policy=policy, order=order, name=stage["name"], role=stage["role"], sla_hours=int(stage["sla_hours"])
            )
    audit_record(
        action="approvals.policy.updated",
        target=policy,
        changes={"before": before, "after": policy_snapshot(policy.tier)},
    )
    return policy
