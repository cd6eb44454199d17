"""factory_boy factories for catalog entities. They build the descriptor data a team would send and create the
entity through the catalog services (so risk, the search entry and the audit trail are written as in production),
never by saving model rows directly."""

from __future__ import annotations

from typing import Any

import factory

from catalog import services
from catalog.models import Agent, Tool


class ToolFactory(factory.DictFactory):
    """`ToolFactory(owner=team.name, name="github-mcp", ...)` -> a Tool created by `services.tool_create`."""

    name = factory.Sequence(lambda n: f"tool-{n}")
    owner = "platform"
    title = factory.LazyAttribute(lambda o: f"{o.name.replace('-', ' ').title()} server")
    description = factory.LazyAttribute(lambda o: f"Reads {o.name} records.")
    kind = "mcp_server"
    data_class = "internal"
    reach = "allowlisted"
    credential_scope = "delegated"
    capabilities = factory.LazyFunction(lambda: [{"name": "list_records", "read_only": True}])
    tags = factory.LazyFunction(lambda: ["scm"])

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **data: Any) -> Tool:
        return services.tool_create(actor=None, data=data)


class AgentFactory(factory.DictFactory):
    """`AgentFactory(owner=team.name, name="stock-keeper", ...)` -> an Agent created by `services.agent_create`."""

    name = factory.Sequence(lambda n: f"agent-{n}")
    owner = "platform"
    title = factory.LazyAttribute(lambda o: f"{o.name.replace('-', ' ').title()} agent")
    description = "Helps with records."
    autonomy_level = 2
    human_in_loop = "per_action"
    data_class = "internal"

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **data: Any) -> Agent:
        return services.agent_create(actor=None, data=data)
