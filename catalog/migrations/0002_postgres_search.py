"""PostgreSQL search: full-text (GIN over a stored tsvector) and typo-tolerant trigram matching (pg_trgm).
SQLite keeps the plain tables; the selectors fall back to substring matching there."""

from django.db import migrations

from catalog.migrations._search_sql import ADD_VECTOR, CREATE_INDEXES, DROP_INDEXES, DROP_VECTOR

# A stored generated tsvector: matching and ranking never re-parse descriptions.
FORWARD = "CREATE EXTENSION IF NOT EXISTS pg_trgm;" + ADD_VECTOR + CREATE_INDEXES
BACKWARD = DROP_INDEXES + DROP_VECTOR


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
