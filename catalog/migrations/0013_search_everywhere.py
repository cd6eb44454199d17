"""One search on both databases (catalog.search): SQLite gets an FTS5 index of the entries' search text with its
vocabulary, kept by triggers; PostgreSQL's vocabulary of typo corrections takes every word of the search text, not
only those of names, titles, tags and capabilities (so "warehuose" finds a description's "warehouse")."""

from typing import Any

from django.db import migrations

from catalog.migrations import _search_sql


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_search_sql.WORDS_FROM_TEXT)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in _search_sql.SQLITE_CREATE:
            schema_editor.execute(statement)


def backward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_search_sql.WORDS_FROM_NAMES)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in _search_sql.SQLITE_DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0012_grant_coverage_and_hints_attestation")]

    operations = [migrations.RunPython(forward, backward)]
