from typing import Any

from django.apps import AppConfig


def _record_denied_check(sender: Any, **kwargs: Any) -> None:
    """A call the call-time grant check refused is a finding, as if its span had arrived (counted per process:
    runtime.denials says why)."""
    from runtime.denials import denied_checks

    denied_checks.record(
        agent=kwargs["agent"],
        tool=kwargs["tool"],
        capability=kwargs.get("capability") or "",
        environment=kwargs["environment"],
        verdict=str(kwargs["verdict"]),
        reason=kwargs.get("reason", ""),
    )


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Runtime governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from catalog import services as catalog_services
        from catalog.signals import grant_check_denied
        from portal import tokens
        from runtime import autonomy, metrics  # noqa: F401  (metrics: Prometheus collectors)
        from runtime.selectors import bind_agent_token

        tokens.agent_binder = bind_agent_token
        autonomy.register()
        catalog_services.autonomy_gate = autonomy.hold_autonomy_raise
        grant_check_denied.connect(_record_denied_check, dispatch_uid="runtime-denied-check-finding")

    def seed_demo(self, stdout: Any) -> None:
        from runtime.demo import seed

        seed(stdout=stdout)

    def entity_panels(self, page: Any) -> list[dict[str, Any]]:
        """Findings, usage and scorecard on catalog agent and tool pages."""
        from runtime.views import entity_panels

        return entity_panels(page)

    def dashboard_panels(self, user: Any) -> list[dict[str, Any]]:
        from runtime.selectors import dashboard_panels

        return dashboard_panels(user=user)
