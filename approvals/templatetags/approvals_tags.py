"""Presentation helpers for approval templates: check titles, bound-fact names, links to a request's subject."""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.urls import reverse

from approvals.checks import CHECK_TITLES
from approvals.models import ApprovalRequest
from approvals.notifications import EVENT_TITLES

register = template.Library()

STORED_CHOICE = re.compile(r"[a-z]+(?:_[a-z]+)+")
STORED_CHOICE_IN_TEXT = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")

FACT_NAMES = {
    "rubric_version": "Risk rubric",
    "tool": "Tool",
    "tool_owner": "Tool owner",
    "tool_kind": "Tool kind",
    "tool_version": "Tool version",
    "tool_endpoint": "Endpoint",
    "tool_transport": "Transport",
    "tool_data_class": "Tool data class",
    "reach": "Reach",
    "capabilities_hash": "Capabilities (hash)",
    "credential_scope": "Credential scope",
    "annotations_trusted": "Capability hints attested",
    "environment": "Environment",
    "capability_names": "Capabilities granted",
    "grant_credential_scope": "Grant credential scope",
    "agent": "Agent",
    "agent_owner": "Agent owner",
    "agent_type": "Agent type",
    "agent_data_class": "Agent data class",
    "agent_version": "Agent version",
    "autonomy_level": "Autonomy level",
    "human_in_loop": "Human in the loop",
    "runtime": "Runtime",
    "models": "Models",
    "environments": "Environments",
    "a2a_endpoint": "A2A endpoint",
    "tier": "Risk tier",
}


@register.filter
def hints_words(capability: dict[str, Any]) -> str:
    """A capability's hints in words ("read-only yes, destructive no, ...")."""
    from catalog.fingerprints import hints_text

    return hints_text(capability)


@register.filter
def check_title(name: str) -> str:
    return CHECK_TITLES.get(name, name.replace("_", " ").capitalize())


@register.filter
def fact_name(key: str) -> str:
    if key.startswith("capability:"):
        return f"Capability {key.removeprefix('capability:')}"
    return FACT_NAMES.get(key, key.replace("_", " ").capitalize())


@register.filter
def fact_value(value: Any) -> str:
    if value is None or value == "":
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "all"
    if isinstance(value, str) and STORED_CHOICE.fullmatch(value):
        return value.replace("_", " ")  # a stored choice (per_action, tool_grant) in words
    return str(value)


@register.filter
def detail_words(text: str) -> str:
    """A timeline detail ("state: checking → in_review") with stored choices in words."""
    return STORED_CHOICE_IN_TEXT.sub(lambda match: match.group(0).replace("_", " "), str(text))


@register.filter
def event_title(event: str) -> str:
    return EVENT_TITLES.get(event, event.replace("_", " ").replace("-", " "))


@register.filter
def contributing(factors: Any) -> list[dict[str, Any]]:
    """The risk factors that add points, highest first (the order the rubric explains them in)."""
    rows = [factor for factor in factors or [] if isinstance(factor, dict) and factor.get("points")]
    return sorted(rows, key=lambda factor: -int(factor.get("points") or 0))


@register.simple_tag
def subject_links(request: ApprovalRequest) -> list[dict[str, str]]:
    """Catalog links for what the request is about: the agent and the tool of a grant, else the one entity."""
    links = []
    if request.grant_id is not None and request.grant is not None:
        grant = request.grant
        links.append({"label": grant.agent.name, "url": reverse("catalog:agent", args=[grant.agent.name])})
        links.append({"label": grant.tool.name, "url": reverse("catalog:tool", args=[grant.tool.name])})
    elif request.tool_id is not None and request.tool is not None:
        links.append({"label": request.tool.name, "url": reverse("catalog:tool", args=[request.tool.name])})
    elif request.agent_id is not None and request.agent is not None:
        links.append({"label": request.agent.name, "url": reverse("catalog:agent", args=[request.agent.name])})
    return links


TIMELINE_KINDS = {"event": "Event", "check": "Check", "decision": "Decision", "notification": "Notification"}
STATUS_WORDS = {"approve": "Approved", "reject": "Rejected", "request_changes": "Changes requested"}


@register.filter
def timeline_kind(kind: str) -> str:
    return TIMELINE_KINDS.get(kind, kind.replace("_", " ").capitalize())


@register.filter
def status_label(status: str) -> str:
    """A check, decision or notification status as a label: request_changes -> Changes requested."""
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


@register.filter
def timeline_sentence(item: Any) -> str:
    """A timeline entry in plain words: "alice approved stage Security review", "sam submitted request #3"."""
    from portal.activity import describe

    if item.kind == "event":
        return describe(action=f"approvals.{item.title}", actor=item.actor, subject="the request")
    if item.kind == "decision":
        stage = item.title.split(" at ", 1)[1] if " at " in item.title else ""
        return describe(action=f"approvals.decision.{item.status}", actor=item.actor, changes={"stage": stage})
    if item.kind == "check":
        return f"Check {item.title}"
    if item.kind == "notification":
        event, _, channel = item.title.partition(" via ")
        return f"“{event_title(event)}” sent by {'e-mail' if channel == 'email' else channel.replace('_', ' ')}"
    return str(item.title)


@register.filter
def role_label(role: str) -> str:
    """security-reviewer -> Security reviewer."""
    text = str(role).replace("-", " ").replace("_", " ")
    return text[:1].upper() + text[1:]
