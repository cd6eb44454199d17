"""Seed the default approval policy per tier (platform admins edit them afterwards)."""

from django.db import migrations

DEFAULTS = {
    "low": (True, True, 365, False, "Automatic after checks plus the owner's attestation; valid 12 months.", []),
    "medium": (False, False, 365, False, "One security reviewer; valid 12 months.", [("Security review", "security-reviewer", 48)]),
    "high": (
        False, False, 180, True, "A security reviewer and a data owner, two different people; valid 6 months.",
        [("Security review", "security-reviewer", 48), ("Data owner", "data-owner", 72)],
    ),
    "critical": (
        False, False, 90, True, "Security lead, data owner and an accountable business owner; valid 90 days.",
        [("Security lead", "security-lead", 24), ("Data owner", "data-owner", 48), ("Business owner", "business-owner", 48)],
    ),
}  # fmt: skip


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    policy_model = apps.get_model("approvals", "ApprovalPolicy")
    stage_model = apps.get_model("approvals", "PolicyStage")
    for tier, (auto, attest, days, exclude, description, stages) in DEFAULTS.items():
        policy, created = policy_model.objects.get_or_create(
            tier=tier,
            defaults={"auto_approve": auto, "requires_attestation": attest, "validity_days": days,
                      "exclude_owning_team": exclude, "description": description},
        )  # fmt: skip
        if created:
            for order, (name, role, sla) in enumerate(stages):
                stage_model.objects.create(policy=policy, order=order, name=name, role=role, sla_hours=sla)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
