"""Autonomy change requests: a raise of an agent's autonomy to 4 or 5 waits in an approval request that records the
requested facts (`proposed_changes`) until it is approved.

On SQLite, adding the column rebuilds approvals_approvalrequest, which the separation-of-duties triggers of 0003
read: they are dropped first and created again after (PostgreSQL adds the column in place and keeps them).
"""

import importlib

from django.db import migrations, models

triggers = importlib.import_module("approvals.migrations.0003_decision_facts_and_separation_of_duties")


def drop_sqlite_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "sqlite":
        triggers._run(schema_editor, triggers.SQLITE_DROP)


def create_sqlite_triggers(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "sqlite":
        triggers._run(schema_editor, triggers.SQLITE_CREATE)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0003_decision_facts_and_separation_of_duties"),
    ]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, create_sqlite_triggers),
        migrations.AddField(
            model_name="approvalrequest",
            name="proposed_changes",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="approvalrequest",
            name="kind",
            field=models.CharField(
                choices=[
                    ("agent_onboarding", "agent onboarding"),
                    ("tool_onboarding", "tool onboarding"),
                    ("tool_grant", "tool access grant"),
                    ("recertification", "Recertification"),
                    ("re_review", "re-review after a riskier change"),
                    ("autonomy_change", "autonomy change"),
                ],
                db_index=True,
                max_length=20,
            ),
        ),
        migrations.RunPython(create_sqlite_triggers, drop_sqlite_triggers),
    ]
