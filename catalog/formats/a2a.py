"""A2A agent card -> one ``agent`` entity; plus well-known discovery.

Reads the v1.0 card (``supportedInterfaces[]`` of ``{url, protocolBinding, protocolVersion}``,
the first entry preferred) and the pre-1.0 card (top-level ``url``, ``preferredTransport``,
``additionalInterfaces``, ``protocolVersion``), and hybrids of both. A pre-1.0 field that
v1.0 removed adds a warning to the entity (the card still loads).

==================  =============================================================
data key            agent card
==================  =============================================================
name                ``slugify_dns_label(name)``
title               ``name`` as written
description         ``description``
version             ``version``
provider_org        ``provider.organization``
skills              ``[{id, name, description, tags}]`` from ``skills``
a2a_endpoint        preferred interface URL (``supportedInterfaces[0].url``, else ``url``)
a2a_protocol_version  that interface's ``protocolVersion``, else top-level ``protocolVersion``
links               ``documentationUrl`` as ``{"url": ..., "title": "Documentation"}``
==================  =============================================================

A card says nothing about owner, lifecycle or risk facts, so those keys are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from catalog.formats.naming import slugify_dns_label
from catalog.formats.safe_yaml import DEFAULT_MAX_BYTES, InputRejected, load_json_document
from catalog.formats.types import FormatError, ParsedEntity, ParseResult

FORMAT: Final = "a2a"
WELL_KNOWN_PATHS: Final = ("/.well-known/agent-card.json", "/.well-known/agent.json")
# Fields present in pre-1.0 cards that v1.0 removed or moved, and where they went.
REMOVED_IN_V1: Final = {
    "url": "supportedInterfaces[].url",
    "preferredTransport": "supportedInterfaces[].protocolBinding",
    "additionalInterfaces": "supportedInterfaces[]",
    "protocolVersion": "supportedInterfaces[].protocolVersion",
    "supportsAuthenticatedExtendedCard": "capabilities.extendedAgentCard",
}


def agent_card_urls(base_url: str) -> list[str]:
    """Where to look for an agent's card: the v0.3+/v1.0 path first, then the older one."""
    base = base_url.rstrip("/")
    return [f"{base}{path}" for path in WELL_KNOWN_PATHS]


class _Card:
    """Field access with error and warning collection for one card."""

    def __init__(self, card: Mapping[str, Any], source: str, index: int) -> None:
        self.card = card
        self.source = source
        self.index = index
        self.errors: list[FormatError] = []
        self.warnings: list[str] = []

    def error(self, field: str, message: str) -> None:
        self.errors.append(FormatError(self.source, self.index, field, message))

    def text(self, value: Any, field: str, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.error(field, "is required")
            return None
        if not isinstance(value, str):
            self.error(field, "must be a string")
            return None
        return value

    def objects(self, value: Any, field: str) -> list[Mapping[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            self.error(field, "must be a list of objects")
            return []
        return value


def _read_skill(card: _Card, skill: Mapping[str, Any], field: str) -> dict[str, Any]:
    tags = skill.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        card.error(f"{field}.tags", "must be a list of strings")
        tags = []
    return {
        "id": card.text(skill.get("id"), f"{field}.id", required=True),
        "name": card.text(skill.get("name"), f"{field}.name", required=True),
        "description": card.text(skill.get("description"), f"{field}.description"),
        "tags": list(tags),
    }


def _preferred_interface(card: _Card) -> tuple[str | None, str | None]:
    """(URL, protocol version) of the preferred interface, reading v1.0 then pre-1.0 fields."""
    interfaces = card.objects(card.card.get("supportedInterfaces"), "supportedInterfaces")
    legacy_url = card.text(card.card.get("url"), "url")
    legacy_version = card.text(card.card.get("protocolVersion"), "protocolVersion")
    if interfaces:
        first = interfaces[0]
        url = card.text(first.get("url"), "supportedInterfaces[0].url", required=True)
        version = card.text(first.get("protocolVersion"), "supportedInterfaces[0].protocolVersion")
        if legacy_url and url and legacy_url != url:
            card.warnings.append(
                f"top-level url {legacy_url!r} differs from supportedInterfaces[0].url; using the latter"
            )
        return url, version or legacy_version
    additional = card.objects(card.card.get("additionalInterfaces"), "additionalInterfaces")
    if legacy_url is None and additional:
        legacy_url = card.text(additional[0].get("url"), "additionalInterfaces[0].url")
    if legacy_url is None:
        card.warnings.append("the card names no endpoint (neither supportedInterfaces nor url)")
    return legacy_url, legacy_version


def _removed_field_warnings(card: Mapping[str, Any]) -> list[str]:
    warnings = [
        f"'{field}' was removed in A2A v1.0 (use {replacement})"
        for field, replacement in REMOVED_IN_V1.items()
        if field in card
    ]
    capabilities = card.get("capabilities")
    if isinstance(capabilities, Mapping) and "stateTransitionHistory" in capabilities:
        warnings.append("'capabilities.stateTransitionHistory' was removed in A2A v1.0")
    return warnings


def _read_details(card: _Card, data: dict[str, Any]) -> None:
    for key in ("description", "version"):
        if (value := card.text(card.card.get(key), key)) is not None:
            data[key] = value
    provider = card.card.get("provider")
    if isinstance(provider, Mapping):
        if (organization := card.text(provider.get("organization"), "provider.organization")) is not None:
            data["provider_org"] = organization
    elif provider is not None:
        card.error("provider", "must be an object")
    skills = card.objects(card.card.get("skills"), "skills")
    if skills:
        data["skills"] = [_read_skill(card, skill, f"skills[{i}]") for i, skill in enumerate(skills)]
    endpoint, protocol_version = _preferred_interface(card)
    if endpoint is not None:
        data["a2a_endpoint"] = endpoint
    if protocol_version is not None:
        data["a2a_protocol_version"] = protocol_version
    if documentation := card.text(card.card.get("documentationUrl"), "documentationUrl"):
        data["links"] = [{"url": documentation, "title": "Documentation"}]


def parse_agent_card(value: Any, *, source: str, index: int = 0) -> ParsedEntity | list[FormatError]:
    """Read one agent card object; returns the entity or this card's errors."""
    if not isinstance(value, Mapping):
        return [FormatError(source, index, "", "an agent card must be a JSON object")]
    card = _Card(value, source, index)
    display_name = card.text(value.get("name"), "name", required=True)
    if display_name is not None and not display_name.strip():
        card.error("name", "must not be empty")
    data: dict[str, Any] = {}
    _read_details(card, data)
    if card.errors or not display_name:
        return card.errors
    name = slugify_dns_label(display_name)
    data = {"name": name, "title": display_name, **data}
    return ParsedEntity("agent", name, data, source, index, [*_removed_field_warnings(value), *card.warnings])


def parse_agent_card_document(value: Any, *, source: str) -> ParseResult:
    """Parse an already loaded agent card into a ``ParseResult``."""
    outcome = parse_agent_card(value, source=source)
    if isinstance(outcome, list):
        return ParseResult(FORMAT, errors=outcome)
    return ParseResult(FORMAT, entities=[outcome])


def parse_agent_card_json(content: bytes | str, *, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ParseResult:
    """Parse agent card bytes; bad input becomes a ``FormatError``, never an exception."""
    try:
        value = load_json_document(content, max_bytes=max_bytes)
    except (InputRejected, ValueError) as error:
        return ParseResult(FORMAT, errors=[FormatError(source, None, "", str(error))])
    return parse_agent_card_document(value, source=source)


def discover_agent_card(base_url: str, fetch: Callable[[str], bytes | None]) -> ParseResult:
    """Fetch and parse the first card found at the well-known URLs.

    ``fetch`` does the network work (and its policy: timeouts, allow-lists, size limits); it
    returns the body, or None when there is nothing at that URL (404).
    """
    tried = agent_card_urls(base_url)
    for url in tried:
        body = fetch(url)
        if body is not None:
            return parse_agent_card_json(body, source=url)
    message = f"no agent card found at {' or '.join(tried)}"
    return ParseResult(FORMAT, errors=[FormatError(base_url, None, "", message)])
