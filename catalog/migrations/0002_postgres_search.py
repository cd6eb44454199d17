"""PostgreSQL search: full-text (GIN over to_tsvector) and typo-tolerant trigram matching (pg_trgm).
SQLite keeps the plain tables; the selectors fall back to substring matching there."""

from django.db import migrations

FORWARD = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS catalog_entry_fts ON catalog_catalogentry
  USING gin (to_tsvector('simple'::regconfig, COALESCE(search_text, '')));
CREATE INDEX IF NOT EXISTS catalog_entry_trgm ON catalog_catalogentry USING gin (search_names gin_trgm_ops);
CREATE INDEX IF NOT EXISTS catalog_entry_tags ON catalog_catalogentry USING gin (tags jsonb_path_ops);
"""
BACKWARD = """
DROP INDEX IF EXISTS catalog_entry_fts;
DROP INDEX IF EXISTS catalog_entry_trgm;
DROP INDEX IF EXISTS catalog_entry_tags;
"""


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
