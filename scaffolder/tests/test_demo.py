"""`manage.py seed_demo` includes a golden-path MCP server and agent pair, approved, with an approved grant."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client

from catalog.models import Agent, Tool, ToolGrant
from scaffolder.demo import AGENT, SERVER


@pytest.mark.django_db(transaction=True)
def test_the_demo_registry_lists_the_golden_path_server_its_agent_may_use() -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    assert Tool.objects.get(name=SERVER).status == Tool.Status.APPROVED
    assert Agent.objects.get(name=AGENT).status != Agent.Status.DRAFT
    grant = ToolGrant.objects.get(agent__name=AGENT, tool__name=SERVER, environment="production")
    assert grant.status == ToolGrant.Status.APPROVED
    assert sorted(grant.capability_names) == ["get_item", "list_items"]
    servers = Client().get("/v0.1/servers").json()["servers"]
    assert f"io.github.platform/{SERVER}" in [entry["server"]["name"] for entry in servers]

    call_command("seed_demo", stdout=out)
    assert "golden-path pair already present" in out.getvalue()
