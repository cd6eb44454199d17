from typing import Any

from django.apps import AppConfig


class ScaffolderConfig(AppConfig):
    name = "scaffolder"
    verbose_name = "Scaffolder"

    def seed_demo(self, stdout: Any) -> None:
        """Register the golden paths shipped in golden_paths/ (idempotent; `manage.py seed_demo` calls it)."""
        from scaffolder.services import seed_builtin_templates

        seed_builtin_templates(write=stdout.write)

    def dashboard_panels(self, user: Any) -> list[dict[str, Any]]:
        from scaffolder.selectors import dashboard_panels

        return dashboard_panels(user=user)
