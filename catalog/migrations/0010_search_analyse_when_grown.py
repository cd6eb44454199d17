"""The search trigger analyses catalog_search_row after a bulk insert only when the table grew by half or more
(see _search_sql.ANALYSE_WHEN_GROWN): a 10,000-entry import into a 100,000-entry catalog no longer pays 0.3 s
for statistics that barely move."""

from typing import Any

from django.db import migrations

from catalog.migrations._search_sql import ANALYSE_EVERY_BULK, ANALYSE_WHEN_GROWN, inserted_function


def _replace(analyse_when: str) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(inserted_function(analyse_when))

    return run


class Migration(migrations.Migration):
    dependencies = [("catalog", "0009_risk_json_not_analysed")]

    operations = [migrations.RunPython(_replace(ANALYSE_WHEN_GROWN), _replace(ANALYSE_EVERY_BULK))]
