"""Each agent and tool records the kind of source that created it; existing ones from their location or file."""

import catalog.models
from django.db import migrations, models


def fill_sources(apps, schema_editor):  # type: ignore[no-untyped-def]
    for name in ("Agent", "Tool"):
        model = apps.get_model("catalog", name)
        model.objects.filter(source_location__isnull=False).update(source_kind="location")
        model.objects.filter(source_location__isnull=True).exclude(source_key="").update(source_kind="file")


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0010_search_analyse_when_grown"),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="source_kind",
            field=models.CharField(
                blank=True,
                choices=[
                    ("location", "Location"),
                    ("file", "file import (command line)"),
                    ("import", "import (web or API upload)"),
                    ("scaffolder", "Scaffolder"),
                    ("ui", "web UI"),
                    ("api", "Api"),
                    ("cli", "command line"),
                    ("", "unrecorded"),
                ],
                default=catalog.models.current_entity_source,
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="tool",
            name="source_kind",
            field=models.CharField(
                blank=True,
                choices=[
                    ("location", "Location"),
                    ("file", "file import (command line)"),
                    ("import", "import (web or API upload)"),
                    ("scaffolder", "Scaffolder"),
                    ("ui", "web UI"),
                    ("api", "Api"),
                    ("cli", "command line"),
                    ("", "unrecorded"),
                ],
                default=catalog.models.current_entity_source,
                max_length=12,
            ),
        ),
        migrations.RunPython(fill_sources, migrations.RunPython.noop),
    ]
