from typing import Any

from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import receivers  # noqa: F401  (signal receivers)

    def seed_demo(self, stdout: Any) -> None:
        from approvals.demo import seed_requests

        seed_requests(stdout)

    def dashboard_panels(self, user: Any) -> list[dict[str, Any]]:
        from approvals.selectors import dashboard_panels

        return dashboard_panels(user=user)

    def entity_panels(self, page: Any) -> list[dict[str, Any]]:
        """Approval status, submit forms and active grants on catalog agent and tool pages."""
        from approvals.views import entity_panels

        return entity_panels(page)

    def team_panels(self, team: Any, user: Any) -> list[dict[str, Any]]:
        """A team's open approval requests on its catalog page."""
        from approvals.views import team_panels

        return team_panels(team, user)
