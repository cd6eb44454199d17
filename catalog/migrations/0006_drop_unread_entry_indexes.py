"""catalog_catalogentry loses the indexes no query reads since migration 0004 moved search, sorting and filtering
on PostgreSQL to catalog_search_row: each cost every import, edit and status change one more index write."""

from typing import Any

from django.db import migrations

from catalog.migrations._search_sql import CREATE_INDEXES


def drop_tags_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS catalog_entry_tags")


def restore_tags_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_INDEXES)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_drop_delete_object_permissions")]

    operations = [
        migrations.RemoveIndex(model_name="catalogentry", name="catalog_entry_name"),
        migrations.RemoveIndex(model_name="catalogentry", name="catalog_entry_kind_name"),
        migrations.RemoveIndex(model_name="catalogentry", name="catalog_entry_owner"),
        migrations.RemoveIndex(model_name="catalogentry", name="catalog_entry_updated"),
        migrations.RunPython(drop_tags_index, restore_tags_index),
    ]
