from typing import Any

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def dashboard_panels(self, user: Any) -> list[dict[str, Any]]:
        from catalog.selectors import catalog_dashboard_panels

        return catalog_dashboard_panels(user=user)
