"""Owners' maintainers keep one object permission per agent or tool (change): deleting checks it too, so the
delete_agent / delete_tool rows granted until now were never read. Removing them halves the permission rows."""

from typing import Any

from django.db import migrations


def forward(apps: Any, schema_editor: Any) -> None:
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    GroupObjectPermission.objects.filter(
        permission__content_type__app_label="catalog", permission__codename__in=["delete_agent", "delete_tool"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_search_tables"), ("guardian", "__first__")]
    # Backwards: nothing reads the removed rows, so none are recreated.
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
