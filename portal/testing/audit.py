"""For tests of the audit trail's tamper evidence: act as an attacker with database access."""

from __future__ import annotations

import importlib
from typing import Any

from django.db import connection

_MIGRATION = importlib.import_module("portal.migrations.0004_audit_sealed_chain")


def tamper_with_audit(sql: str, params: list[Any] | None = None) -> None:
    """Run `sql` as an attacker with database access would: the append-only triggers switched off first, then on."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_append_only")
            cursor.execute("ALTER TABLE portal_auditcheckpoint DISABLE TRIGGER portal_auditcheckpoint_append_only")
        else:
            for name in _MIGRATION.SQLITE_TRIGGER_NAMES:
                cursor.execute(f"DROP TRIGGER {name}")
        cursor.execute(sql, params or [])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER portal_auditevent_append_only")
            cursor.execute("ALTER TABLE portal_auditcheckpoint ENABLE TRIGGER portal_auditcheckpoint_append_only")
        else:
            for statement in _MIGRATION.SQLITE_TRIGGERS:
                cursor.execute(statement)
