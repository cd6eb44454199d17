from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Agent Portal"

    def ready(self) -> None:
        from portal import metrics, schema  # noqa: F401  (signal receivers and OpenAPI extensions)
