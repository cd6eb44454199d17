"""The entity pages read their entity, its owner and everything the page shows in a fixed number of ORM queries."""

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


def test_the_tool_page_reads_the_tool_its_owner_capabilities_and_grants_in_three_queries(
    catalog: dict[str, Any], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(3):
        page = selectors.tool_page_detail(name="LEDGER", user=catalog["owner"])
        capabilities, grants = list(page.capabilities.all()), list(page.grants.all())
        assert page.owner.name == "payments" and all(g.agent.owner.name for g in grants)

    assert page.get_deferred_fields() == {"definition"}
    assert _values(page, skip=("definition",)) == _values(selectors.tool_detail(name="ledger"), skip=("definition",))
    assert [c.name for c in capabilities] == ["list_entries", "write_entry"]
    assert [(g.agent.name, g.environment) for g in grants] == [
        ("clerk", "production"),
        ("clerk", "staging"),
        ("helper", "production"),
    ]
    assert grants[0].agent.get_deferred_fields()  # the page shows names and tiers, not descriptions


def test_the_agent_page_reads_the_agent_its_grants_and_relations_in_three_queries(
    catalog: dict[str, Any], django_assert_num_queries: Any
) -> None:
    # The agent with its owner; its grants with their tools; its models and both directions of its calls.
    with django_assert_num_queries(3):
        page = selectors.agent_page_detail(name="clerk", user=catalog["owner"])
        grants = list(page.grants.all())
        assert {(g.tool.name, g.tool.owner.name) for g in grants} == {("ledger", "payments"), ("audit-log", "platform")}
        relations = selectors.agent_relations(agent=page)

    assert _values(page) == _values(selectors.agent_detail(name="clerk"))
    assert grants[0].tool.get_deferred_fields()  # not descriptions or definitions
    assert relations.models == [{"name": "gpt-x", "title": "GPT X", "provider": "acme"}]
    assert (relations.calls, relations.called_by) == (["helper"], ["boss"])


def test_a_name_nobody_has_is_does_not_exist() -> None:
    from catalog.models import Agent, Tool

    with pytest.raises(Tool.DoesNotExist):
        selectors.tool_page_detail(name="nope", user=None)  # type: ignore[arg-type]
    with pytest.raises(Agent.DoesNotExist):
        selectors.agent_page_detail(name="nope", user=None)  # type: ignore[arg-type]


# What the agent page reads, each once: session, user, the agent with its owner, its grants, the viewer's roles,
# whether they maintain the owner, (a stranger: guardian's object permissions), its history, its approval requests
# (newest and open: the approvals panel and the runtime panel's open autonomy change), the runtime evidence check of
# that change, its open findings, scorecard, tool and model usage, and its models and neighbours. The tool page reads
# its capabilities and who called it instead of the usage, relations and autonomy change.
ENTITY_PAGE_QUERIES = {
    ("agent", "maintainer"): 14,
    ("agent", "stranger"): 15,
    ("tool", "maintainer"): 12,
    ("tool", "stranger"): 13,
}


@pytest.mark.parametrize("viewer", ["maintainer", "stranger"])
def test_it_reads_nothing_twice_for_an_entity_page_and_its_panels(
    client: Any, catalog: dict[str, Any], make_user: Callable[..., Any], viewer: str
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from approvals import submitting
    from approvals.models import ApprovalRequest
    from portal.context import acting_as, actor_for_user

    owner = catalog["owner"]
    with acting_as(actor_for_user(owner)):
        submitting.request_submit(actor=owner, kind="tool_onboarding", tool=catalog["tool"])
        services.agent_update(actor=owner, agent=catalog["agent"], data={"autonomy_level": 4})
    assert ApprovalRequest.objects.filter(agent=catalog["agent"], kind="autonomy_change").exists()
    client.force_login(owner if viewer == "maintainer" else make_user("sam"))

    for kind, name in (("agent", "clerk"), ("tool", "ledger")):
        url = reverse(f"catalog:{kind}", args=[name])
        client.get(url)  # content types are cached after a first request, as in a running server
        with CaptureQueriesContext(connection) as captured:
            page = client.get(url)
        assert page.status_code == 200
        statements = [query["sql"] for query in captured.captured_queries]
        assert not [sql for sql in statements if statements.count(sql) > 1], f"read twice on the {kind} page"
        assert len(statements) == ENTITY_PAGE_QUERIES[(kind, viewer)], statements
        html = page.content.decode()
        assert 'data-testid="approval-panel"' in html and 'data-testid="runtime-panel"' in html
        if kind == "agent":
            assert 'data-testid="autonomy-request"' in html
            assert ('data-testid="grant-form"' in html) is (viewer == "maintainer")
        else:
            assert f"#{ApprovalRequest.objects.get(kind='tool_onboarding').pk} tool onboarding" in html


# With active grants (and no autonomy change open) the approvals panel also reads the approval behind each grant and,
# on an agent's page, the capabilities of its tools: a tool's page has its own already.
ACTIVE_GRANT_QUERIES = {"agent": 14 + 2, "tool": 13 + 1}


def test_it_reads_the_capabilities_a_tool_page_shows_grants_against_once(
    client: Any, catalog: dict[str, Any], make_user: Callable[..., Any]
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from catalog.models import ToolGrant

    ToolGrant.objects.update(status=ToolGrant.Status.APPROVED, capability_names=["list_entries"])
    client.force_login(make_user("sam"))
    for kind, name in (("agent", "clerk"), ("tool", "ledger")):
        url = reverse(f"catalog:{kind}", args=[name])
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            page = client.get(url)
        statements = [query["sql"] for query in captured.captured_queries]
        assert len(statements) == ACTIVE_GRANT_QUERIES[kind], statements
        assert "write_entry" in page.content.decode()  # the capability no grant covers is named


def test_it_lists_an_agents_models_and_both_directions_of_its_calls_by_name(catalog: dict[str, Any]) -> None:
    owner = catalog["owner"]
    services.model_upsert(data={"name": "alpha-model", "title": "", "provider": ""})
    services.agent_create(actor=owner, data={"name": "zed", "owner": "payments", "calls": ["clerk"]})
    services.agent_create(actor=owner, data={"name": "aaron", "owner": "payments"})
    clerk = services.agent_update(
        actor=owner, agent=catalog["agent"], data={"calls": ["helper", "aaron"], "models": ["gpt-x", "alpha-model"]}
    )

    relations = selectors.agent_relations(agent=clerk)

    assert relations.models == [
        {"name": "alpha-model", "title": "", "provider": ""},
        {"name": "gpt-x", "title": "GPT X", "provider": "acme"},
    ]
    assert relations.calls == ["aaron", "helper"]
    assert relations.called_by == ["boss", "zed"]
    assert selectors.agent_relations(agent=selectors.agent_detail(name="aaron")).called_by == ["clerk"]
