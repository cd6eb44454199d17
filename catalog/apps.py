from typing import Any

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def seed_demo(self, stdout: Any) -> None:
        """Import the demo catalog (idempotent: re-importing the same file changes nothing)."""
        from pathlib import Path

        from catalog.importing import import_inputs
        from catalog.models import EntitySource

        path = (Path(__file__).parent / "demo" / "catalog-info.yaml").resolve()
        # The demo file is the entities' source: `catalog_import` of the same file updates them, another file not.
        report = import_inputs([(str(path), path.read_bytes())], source_kind=EntitySource.FILE)
        stdout.write(f"catalog demo: created {report.created}, unchanged {report.unchanged}, failed {report.failed}")
        for issue in report.errors:
            stdout.write(f"  {issue}")

    def dashboard_panels(self, user: Any) -> list[dict[str, Any]]:
        from catalog.selectors import catalog_dashboard_panels

        return catalog_dashboard_panels(user=user)
