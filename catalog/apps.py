from typing import Any

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from catalog.teams import team_memberships_sync
        from portal import sso

        sso.team_memberships_sync = team_memberships_sync

    def seed_demo(self, stdout: Any) -> None:
        """Teams, memberships and the demo catalog (`manage.py seed_demo`; idempotent)."""
        from catalog.demo import seed

        seed(stdout)

    def dashboard_panels(self, user: Any) -> list[dict[str, Any]]:
        from catalog.selectors import catalog_dashboard_panels

        return catalog_dashboard_panels(user=user)
