from typing import Any

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import receivers  # noqa: F401  (signal receivers)

    def dashboard_panels(self, user: Any) -> list[dict[str, Any]]:
        from approvals.selectors import dashboard_panels

        return dashboard_panels(user=user)
