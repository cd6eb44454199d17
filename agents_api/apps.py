from django.apps import AppConfig


class AgentsApiConfig(AppConfig):
    name = "agents_api"
    verbose_name = "Agents API (MCP server and grant check)"

    def ready(self) -> None:
        from agents_api import receivers  # noqa: F401  (keeps the grant index current)
