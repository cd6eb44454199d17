"""seed_scale writes the same rows the services would: entities, capabilities, search entries, owners' object
permissions and stored risk assessments (on SQLite through bulk_create, on PostgreSQL through COPY)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection
from guardian.models import GroupObjectPermission

from catalog import risk, scoring
from catalog.models import Agent, Capability, CatalogEntry, Team, Tool
from portal.audit import audit_verify_chain

pytestmark = pytest.mark.django_db


def test_it_seeds_a_consistent_catalog(capsys: Any) -> None:
    call_command("seed_scale", agents=30, tools=120, teams=7, prefix="t")

    assert (Team.objects.count(), Tool.objects.count(), Agent.objects.count()) == (7, 120, 30)
    assert CatalogEntry.objects.filter(kind="tool").count() == 120
    assert CatalogEntry.objects.filter(kind="agent").count() == 30
    assert Capability.objects.count() >= 2 * 120
    # No permission rows: owners' maintainers edit by their membership (services.can_edit).
    assert not GroupObjectPermission.objects.exists()
    tool = Tool.objects.select_related("owner").order_by("pk")[7]
    # The stored tier is the rubric's for the stored facts; the entry mirrors it.
    facts = scoring.tool_facts(tool)
    assert tool.risk_tier == risk.assess_tool(facts).tier.value
    entry = CatalogEntry.objects.get(kind="tool", entity_id=tool.pk)
    assert (entry.name, entry.risk_tier, entry.owner_id) == (tool.name, tool.risk_tier, tool.owner_id)
    assert tool.name in entry.search_text and all(c.name in entry.search_names for c in tool.capabilities.all())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM catalog_search_row")
            assert cursor.fetchone()[0] == 150  # the triggers kept the search table
    assert audit_verify_chain().ok
    assert "seeded 7 teams, 120 tools, 30 agents" in capsys.readouterr().out


def test_every_stored_assessment_is_the_rubrics_for_the_stored_facts() -> None:
    # seed_scale assesses each distinct set of facts once and shares the result: it must match the rubric's
    # answer for every entity, as if each had been assessed alone.
    call_command("seed_scale", agents=40, tools=200, teams=5, prefix="r")

    tools = Tool.objects.prefetch_related("capabilities")
    assert tools.count() == 200
    for tool in tools:
        assert tool.risk == risk.assess_tool(scoring.tool_facts(tool)).to_dict(), tool.name
        assert tool.risk_tier == tool.risk["tier"]
    for agent in Agent.objects.all():
        assert agent.risk == risk.assess_agent(scoring.agent_facts(agent)).to_dict(), agent.name


def _schema() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'catalog%%' ORDER BY 1")
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid::regclass::text LIKE 'catalog%%' ORDER BY 1"
        )
        return indexes, cursor.fetchall()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the bulk load drops indexes on PostgreSQL only")
def test_the_bulk_load_restores_every_index_and_key_and_a_duplicate_still_fails() -> None:
    before = _schema()
    call_command("seed_scale", agents=10, tools=30, teams=3, prefix="k")
    assert _schema() == before  # the 23 dropped indexes and 6 foreign keys are back, as they were

    # The same prefix again: the names collide. The case-insensitive unique index, built after the load, refuses
    # them and the whole seed rolls back, indexes included.
    with pytest.raises(IntegrityError):
        call_command("seed_scale", agents=10, tools=30, teams=3, prefix="k")
    assert _schema() == before
    assert (Tool.objects.count(), Agent.objects.count()) == (30, 10)
