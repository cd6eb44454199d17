"""The audit chain without a global lock: events are inserted unsealed (no sequence or hash) and a sealer chains
them afterwards, setting those three columns once; signed checkpoints of the chain head.

The append-only triggers now let exactly that one update through (an unsealed row gets its chain columns, nothing
else changes) and guard the checkpoints too. SQLite gets them as well. On SQLite a full reset (`manage.py flush`)
removes the chain head first, which is what lets it delete events and checkpoints; a later migration that rebuilds
one of these tables on SQLite must create its triggers again (SQLite drops them with the old table).
"""

import django.utils.timezone
from django.db import migrations, models

# The columns an event is made of: the sealer may not change them.
CONTENT = [
    "id", "occurred_at", "actor_kind", "actor_user_id", "actor_label", "actor_token_id", "action", "object_type",
    "object_id", "object_repr", "changes", "request_id", "client_ip",
]  # fmt: skip
_NEW = ", ".join(f"NEW.{c}" for c in CONTENT)
_OLD = ", ".join(f"OLD.{c}" for c in CONTENT)

POSTGRESQL_FORWARD = f"""
CREATE OR REPLACE FUNCTION portal_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.hash IS NULL AND NEW.hash IS NOT NULL AND ROW({_NEW}) IS NOT DISTINCT FROM ROW({_OLD})
  THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION portal_audit_checkpoint_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit checkpoints are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER portal_auditcheckpoint_append_only BEFORE UPDATE OR DELETE ON portal_auditcheckpoint
  FOR EACH ROW EXECUTE FUNCTION portal_audit_checkpoint_append_only();
"""
POSTGRESQL_BACKWARD = """
CREATE OR REPLACE FUNCTION portal_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS portal_auditcheckpoint_append_only ON portal_auditcheckpoint;
DROP FUNCTION IF EXISTS portal_audit_checkpoint_append_only();
"""
_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CONTENT)
_RESET = "NOT EXISTS (SELECT 1 FROM portal_auditchainhead)"
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER portal_auditevent_seal_once BEFORE UPDATE ON portal_auditevent
    WHEN OLD.hash IS NOT NULL OR NEW.hash IS NULL OR {_CHANGED}
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END""",
    f"""CREATE TRIGGER portal_auditevent_no_delete BEFORE DELETE ON portal_auditevent WHEN NOT ({_RESET})
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only (DELETE refused)'); END""",
    """CREATE TRIGGER portal_auditcheckpoint_no_update BEFORE UPDATE ON portal_auditcheckpoint
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only (UPDATE refused)'); END""",
    f"""CREATE TRIGGER portal_auditcheckpoint_no_delete BEFORE DELETE ON portal_auditcheckpoint WHEN NOT ({_RESET})
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only (DELETE refused)'); END""",
]
SQLITE_TRIGGER_NAMES = [
    "portal_auditevent_seal_once",
    "portal_auditevent_no_delete",
    "portal_auditcheckpoint_no_update",
    "portal_auditcheckpoint_no_delete",
]


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(POSTGRESQL_FORWARD)  # no parameters: psycopg leaves the '%' in RAISE alone
        elif vendor == "sqlite":
            for statement in SQLITE_TRIGGERS:
                cursor.execute(statement)
    head_model = apps.get_model("portal", "AuditChainHead")
    event_model = apps.get_model("portal", "AuditEvent")
    head = head_model.objects.filter(id=1).first() or head_model(id=1, last_sequence=0, last_hash="0" * 64)
    head.last_event_id = event_model.objects.filter(hash__isnull=False).aggregate(models.Max("id"))["id__max"] or 0
    head.save()  # it exists from now on: on SQLite its absence is what allows a reset


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(POSTGRESQL_BACKWARD)
        elif vendor == "sqlite":
            for name in SQLITE_TRIGGER_NAMES:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_like_indexes_dropped"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sequence", models.PositiveBigIntegerField(unique=True)),
                ("hash", models.CharField(max_length=64)),
                ("event_id", models.BigIntegerField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("key_id", models.CharField(max_length=16)),
                ("signature", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["sequence"],
            },
        ),
        migrations.AlterModelOptions(
            name="auditevent",
            options={"ordering": ["-id"]},
        ),
        migrations.RemoveIndex(
            model_name="auditevent",
            name="audit_object_idx",
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="last_event_id",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.PositiveBigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["object_type", "object_id", "-id"], name="audit_object_id_idx"),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(condition=models.Q(("hash__isnull", True)), fields=["id"], name="audit_unsealed_idx"),
        ),
        migrations.RunPython(forward, backward),
    ]
