from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from catalog.models import Agent, Tool
from runtime.models import Evaluation, Scorecard
from runtime.scorecards import RULES, scorecards_compute
from runtime.tests.otlp_builders import as_json, tool_call

pytestmark = pytest.mark.django_db
SERVER = "io.github.example/github"


def _card(kind: str, name: str) -> Scorecard:
    return Scorecard.objects.get(kind=kind, name=name)


def _failing(card: Scorecard) -> set[str]:
    return {rule["id"] for rule in card.rules if not rule["passed"]}


def _complete(catalog_setup: Any) -> None:
    Agent.objects.filter(pk=catalog_setup["agent"].pk).update(
        title="Billing bot",
        description="Bills.",
        repository_url="https://git.example/billing-bot",
        data_class="internal",
        autonomy_level=2,
        human_in_loop="per_action",
        runtime="kubernetes",
    )
    Tool.objects.filter(pk=catalog_setup["tool"].pk).update(
        title="GitHub",
        description="Issues.",
        repository_url="https://git.example/gh",
        data_class="internal",
        status="approved",
    )
    catalog_setup["grant"].__class__.objects.filter(pk=catalog_setup["grant"].pk).update(approved_at=timezone.now())


def test_rules_are_data_with_a_level_each() -> None:
    assert {rule.level for rule in RULES} == {"bronze", "silver", "gold"}
    assert len({rule.id for rule in RULES}) == len(RULES)


def test_an_agent_climbs_from_none_to_gold(catalog_setup: Any, telemetry_token: Any, post_spans: Any) -> None:
    scorecards_compute()
    card = _card("agent", "billing-bot")
    assert card.level == ""
    assert "descriptor_complete" in _failing(card)
    _complete(catalog_setup)
    scorecards_compute()
    card = _card("agent", "billing-bot")
    assert (card.level, _failing(card)) == ("bronze", {"telemetry_recent", "eval_passing"})
    secret, _ = telemetry_token()
    assert post_spans(as_json([tool_call("billing-bot", "create_issue", server=SERVER)]), secret).status_code == 200
    scorecards_compute()
    assert _card("agent", "billing-bot").level == "silver"
    Evaluation.objects.create(agent_name="billing-bot", suite="golden", passed=True)
    scorecards_compute()
    assert _card("agent", "billing-bot").level == "gold"
    assert _card("tool", "github").level == "silver"


def test_an_open_finding_and_an_ungranted_call_hold_an_agent_back(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    _complete(catalog_setup)
    Evaluation.objects.create(agent_name="billing-bot", suite="golden", passed=True)
    secret, _ = telemetry_token()
    assert (
        post_spans(as_json([tool_call("billing-bot", "anything", server="io.example/unknown")]), secret).status_code
        == 200
    )
    scorecards_compute()
    card = _card("agent", "billing-bot")
    assert card.level == "bronze"
    assert _failing(card) == {"no_open_findings", "tools_granted_and_approved"}


def test_the_scorecards_page_lists_levels(catalog_setup: Any, client: Any) -> None:
    scorecards_compute()
    client.force_login(catalog_setup["alice"])
    page = client.get("/runtime/scorecards/", {"kind": "agent"}).content.decode()
    assert "billing-bot" in page and "github" not in page.split('data-testid="scorecards"')[1]
