from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.signals import post_migrate


def register_builtin_golden_paths(sender: AppConfig, *, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """After every migrate (a release runs one): record the golden paths shipped in golden_paths/, a changed folder
    as a new version. Idempotent, so it is cheap when nothing changed."""
    from scaffolder import conf
    from scaffolder.models import GoldenPathTemplate, TemplateVersion
    from scaffolder.registering import templates_register_builtin

    if using != DEFAULT_DB_ALIAS or not conf.register_builtin_on_migrate():
        return
    tables = set(connections[using].introspection.table_names())
    if not {GoldenPathTemplate._meta.db_table, TemplateVersion._meta.db_table} <= tables:
        return  # migrated backwards past the scaffolder's tables
    stdout = kwargs.get("stdout")
    for registered in templates_register_builtin():
        if registered.outcome != "unchanged" and stdout is not None and kwargs.get("verbosity", 1) >= 1:
            version = registered.version
            stdout.write(f"  Golden path {version.template.name} {version.version}: {registered.outcome}\n")


class ScaffolderConfig(AppConfig):
    name = "scaffolder"
    verbose_name = "Scaffolder"

    def ready(self) -> None:
        post_migrate.connect(register_builtin_golden_paths, sender=self, dispatch_uid="scaffolder.register_builtin")

    def seed_demo(self, stdout: Any) -> None:
        """The golden-path MCP server and agent pair, approved, with an approved grant (`manage.py seed_demo`)."""
        from scaffolder.demo import seed_golden_path_pair

        seed_golden_path_pair(stdout)

    def dashboard_panels(self, user: Any) -> list[dict[str, Any]]:
        from scaffolder.selectors import dashboard_panels

        return dashboard_panels(user=user)
