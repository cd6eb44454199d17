"""A2A agent cards: v1.0, pre-1.0 and hybrids, plus well-known discovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from catalog.formats import (
    ParsedEntity,
    agent_card_urls,
    discover_agent_card,
    is_dns_label,
    parse_agent_card_json,
)

SAMPLES = Path(__file__).parent / "samples" / "a2a"
MATCH_INVOICE = {
    "id": "match-invoice",
    "name": "Match invoice to PO",
    "description": "Finds the purchase order an invoice belongs to and reports differences.",
    "tags": ["finance", "accounts-payable"],
}
DESCRIPTION = "Reads incoming supplier invoices, matches them to purchase orders and flags mismatches for AP clerks."


def _parse_sample(name: str) -> ParsedEntity:
    result = parse_agent_card_json((SAMPLES / name).read_bytes(), source=name)
    assert result.errors == []
    [entity] = result.entities
    return entity


def test_it_reads_a_v1_card() -> None:
    entity = _parse_sample("agent-card-v1.json")

    assert entity.kind == "agent"
    assert entity.data == {
        "name": "invoice-triage-agent",
        "title": "Invoice Triage Agent",
        "description": DESCRIPTION,
        "version": "2.0.0",
        "provider_org": "ACME Finance Engineering",
        "skills": [MATCH_INVOICE],
        "a2a_endpoint": "https://agents.acme.example/invoice-triage/a2a",
        "a2a_protocol_version": "1.0",
        "links": [{"url": "https://docs.acme.example/agents/invoice-triage", "title": "Documentation"}],
    }
    assert entity.warnings == []


def test_it_reads_a_pre_1_0_card_and_warns_about_removed_fields() -> None:
    entity = _parse_sample("agent-card-v0.3.json")

    assert entity.name == "invoice-triage-agent"
    assert entity.data["a2a_endpoint"] == "https://agents.acme.example/invoice-triage/a2a/v1"
    assert entity.data["a2a_protocol_version"] == "0.3.0"
    assert entity.data["skills"][0] == MATCH_INVOICE
    assert entity.data["skills"][1]["id"] == "flag-duplicate"
    warned = " ".join(entity.warnings)
    for field in ("'url'", "'preferredTransport'", "'additionalInterfaces'", "'protocolVersion'"):
        assert field in warned
    assert "supportsAuthenticatedExtendedCard" in warned
    assert "stateTransitionHistory" in warned


def test_it_prefers_supported_interfaces_in_a_hybrid_card() -> None:
    entity = _parse_sample("agent-card-hybrid.json")

    assert entity.name == "invoice-triage-agent-eu"
    assert entity.data["title"] == "Invoice Triage Agent (EU)"
    assert entity.data["a2a_endpoint"] == "https://agents.eu.acme.example/invoice-triage/a2a"
    assert entity.data["a2a_protocol_version"] == "1.0"
    assert any("differs from supportedInterfaces[0].url" in warning for warning in entity.warnings)
    assert any("'preferredTransport' was removed" in warning for warning in entity.warnings)


def test_it_leaves_owner_and_risk_facts_out() -> None:
    entity = _parse_sample("agent-card-v1.json")

    for key in ("owner", "lifecycle", "autonomy_level", "data_class"):
        assert key not in entity.data


def test_it_falls_back_to_the_first_additional_interface_when_url_is_missing() -> None:
    card = {"name": "X", "additionalInterfaces": [{"url": "https://x.example/a2a", "transport": "GRPC"}]}

    [entity] = parse_agent_card_json(json.dumps(card), source="card.json").entities

    assert entity.data["a2a_endpoint"] == "https://x.example/a2a"


def test_it_slugifies_any_display_name_into_a_dns_label() -> None:
    card = {"name": "  ☃ Snowman's <script>Agent</script> ", "description": "<script>alert(1)</script>"}

    [entity] = parse_agent_card_json(json.dumps(card), source="card.json").entities

    assert is_dns_label(entity.name)
    assert entity.data["title"] == card["name"]
    assert entity.data["description"] == "<script>alert(1)</script>"
    assert any("no endpoint" in warning for warning in entity.warnings)


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({"description": "no name"}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "X", "skills": [{"name": "no id"}]}, "skills[0].id"),
        ({"name": "X", "skills": "all of them"}, "skills"),
        ({"name": "X", "supportedInterfaces": [{"protocolBinding": "JSONRPC"}]}, "supportedInterfaces[0].url"),
        ({"name": "X", "provider": "ACME"}, "provider"),
    ],
)
def test_it_reports_bad_cards_with_the_field(card: dict[str, Any], field: str) -> None:
    result = parse_agent_card_json(json.dumps(card), source="card.json")

    assert result.entities == []
    assert field in [error.field for error in result.errors]


def test_it_lists_the_well_known_urls_new_path_first() -> None:
    assert agent_card_urls("https://agents.example/billing/") == [
        "https://agents.example/billing/.well-known/agent-card.json",
        "https://agents.example/billing/.well-known/agent.json",
    ]


def test_it_discovers_a_card_at_the_older_path_when_the_new_one_is_missing() -> None:
    card = (SAMPLES / "agent-card-v0.3.json").read_bytes()
    asked: list[str] = []

    def fetch(url: str) -> bytes | None:
        asked.append(url)
        return card if url.endswith("/agent.json") else None

    result = discover_agent_card("https://agents.example", fetch)

    assert asked == agent_card_urls("https://agents.example")
    [entity] = result.entities
    assert entity.source == "https://agents.example/.well-known/agent.json"


def test_it_stops_at_the_first_card_it_finds() -> None:
    asked: list[str] = []

    def fetch(url: str) -> bytes | None:
        asked.append(url)
        return (SAMPLES / "agent-card-v1.json").read_bytes()

    discover_agent_card("https://agents.example", fetch)

    assert asked == ["https://agents.example/.well-known/agent-card.json"]


def test_it_reports_when_no_card_is_found() -> None:
    result = discover_agent_card("https://agents.example", lambda url: None)

    [error] = result.errors
    assert error.source == "https://agents.example"
    assert "no agent card found" in error.message
