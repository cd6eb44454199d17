"""PostgreSQL search moves to narrow, trigger-kept tables (see _search_sql): the catalog page's facet counts read
two integers per match instead of eight text columns of a wide row, and typos are corrected against a vocabulary
of catalog words instead of trigram-matching every entry's names. SQLite keeps the plain tables."""

from django.db import migrations

from catalog.migrations._search_sql import (
    ADD_VECTOR,
    BACKFILL,
    CREATE_TABLES,
    CREATE_TRIGGERS,
    DROP_TABLES,
    DROP_TRIGGERS,
    DROP_VECTOR,
    LEGACY_INDEXES,
)

FORWARD = CREATE_TABLES + BACKFILL + CREATE_TRIGGERS + "DROP INDEX IF EXISTS catalog_entry_trgm;" + DROP_VECTOR
BACKWARD = DROP_TRIGGERS + DROP_TABLES + ADD_VECTOR + LEGACY_INDEXES


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_name_indexes")]
    operations = [migrations.RunPython(forward, backward)]
