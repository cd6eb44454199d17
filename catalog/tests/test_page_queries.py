"""The entity pages' hand-written statements read what the ORM reads (catalog.selectors.tool_detail/agent_detail)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from catalog import selectors, services

pytestmark = pytest.mark.django_db


def _values(instance: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    deferred = instance.get_deferred_fields()
    return {
        field.attname: getattr(instance, field.attname)
        for field in type(instance)._meta.concrete_fields
        if field.attname not in deferred and field.attname not in skip
    }


@pytest.fixture
def catalog(make_user: Callable[..., Any], make_team: Callable[..., Any]) -> dict[str, Any]:
    owner = make_user("olive")
    make_team("payments", maintainers=[owner])
    make_team("platform", maintainers=[owner])
    tools = [
        services.tool_create(
            actor=owner,
            data={
                "name": name,
                "owner": team,
                "kind": "http_api",
                "endpoint_url": f"https://{name}.example/api",
                "version": "1.0.0",
                "tags": ["ledger"],
                "capabilities": [
                    {"name": "write_entry", "destructive": True},
                    {"name": "list_entries", "read_only": True},
                ],
            },
        )
        for name, team in (("ledger", "payments"), ("audit-log", "platform"))
    ]
    services.model_upsert(data={"name": "gpt-x", "title": "GPT X", "provider": "acme"})
    helper = services.agent_create(actor=owner, data={"name": "helper", "owner": "platform"})
    agent = services.agent_create(
        actor=owner,
        data={"name": "clerk", "owner": "payments", "models": ["gpt-x"], "calls": ["helper"], "autonomy_level": 3},
    )
    services.agent_create(actor=owner, data={"name": "boss", "owner": "payments", "calls": ["clerk"]})
    for tool in tools:
        for environment in ("staging", "production"):
            services.grant_request(actor=owner, agent=agent, tool=tool, environment=environment)
    services.grant_request(actor=owner, agent=helper, tool=tools[0], environment="production")
    return {"owner": owner, "tool": tools[0], "agent": agent}


def test_the_tool_page_reads_the_tool_its_owner_capabilities_and_grants_as_the_orm_does(
    catalog: dict[str, Any], django_assert_num_queries: Any
) -> None:
    selectors.tool_page_detail(name="ledger", user=catalog["owner"])  # content types cached, as in a running portal
    with django_assert_num_queries(3):
        page = selectors.tool_page_detail(name="LEDGER", user=catalog["owner"])
        capabilities, grants = list(page.capabilities.all()), list(page.grants.all())
        assert all(g.tool is page and g.agent.owner.name for g in grants)
    orm = selectors.tool_detail(name="ledger")

    assert page.get_deferred_fields() == {"definition"}
    assert _values(page) == _values(orm, skip=("definition",))
    assert _values(page.owner) == _values(orm.owner)
    assert [_values(c) for c in capabilities] == [_values(c) for c in orm.capabilities.all()]
    assert [c.name for c in capabilities] == ["list_entries", "write_entry"]
    expected = sorted(orm.grants.all(), key=lambda g: (g.agent.name, g.environment))
    assert [(_values(g), _values(g.agent), _values(g.agent.owner)) for g in grants] == [
        (_values(g), _values(g.agent, skip=tuple(grants[0].agent.get_deferred_fields())), _values(g.agent.owner))
        for g in expected
    ]
    assert [(g.agent.name, g.environment) for g in grants] == [
        ("clerk", "production"),
        ("clerk", "staging"),
        ("helper", "production"),
    ]
    assert page.viewer_may_change is False and page.viewer_maintains_owner is True


def test_the_agent_page_reads_the_agent_its_grants_and_relations_as_the_orm_does(
    catalog: dict[str, Any], django_assert_num_queries: Any
) -> None:
    selectors.agent_page_detail(name="clerk", user=catalog["owner"])
    with django_assert_num_queries(2):
        page = selectors.agent_page_detail(name="clerk", user=catalog["owner"])
        grants = list(page.grants.all())
        assert {(g.tool.name, g.tool.owner.name) for g in grants} == {("ledger", "payments"), ("audit-log", "platform")}
    orm = selectors.agent_detail(name="clerk")

    assert _values(page) == _values(orm) and _values(page.owner) == _values(orm.owner)
    deferred = tuple(grants[0].tool.get_deferred_fields())
    assert deferred  # the page shows names and tiers, not descriptions or definitions
    expected = sorted(orm.grants.all(), key=lambda g: (g.tool.name, g.environment))
    assert [(_values(g), _values(g.tool), _values(g.tool.owner)) for g in grants] == [
        (_values(g), _values(g.tool, skip=deferred), _values(g.tool.owner)) for g in expected
    ]
    relations = selectors.agent_relations(agent=page)
    assert relations.models == [{"name": "gpt-x", "title": "GPT X", "provider": "acme"}]
    assert (relations.calls, relations.called_by) == (["helper"], ["boss"])


def test_a_name_nobody_has_is_does_not_exist() -> None:
    from catalog.models import Agent, Tool

    with pytest.raises(Tool.DoesNotExist):
        selectors.tool_page_detail(name="nope", user=None)  # type: ignore[arg-type]
    with pytest.raises(Agent.DoesNotExist):
        selectors.agent_page_detail(name="nope", user=None)  # type: ignore[arg-type]
