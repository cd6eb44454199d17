"""Presentation helpers for catalog templates: Markdown, risk factor names, query-string links, audit changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django import template
from django.http import HttpRequest
from django.urls import reverse
from django.utils.safestring import SafeString

from catalog.markdown import markdown_to_text, render_markdown
from catalog.models import Agent, Capability, CatalogEntry, Tool

register = template.Library()

# The factor codes of catalog.risk, in words (docs/risk-tiers.md uses the same names).
FACTOR_NAMES = {
    "D": "Data class",
    "W": "Write capability",
    "E": "Reach",
    "A": "Autonomy level",
    "H": "Human in the loop",
    "C": "Credential scope",
}
HINT_LABELS = {
    "read_only": "read-only",
    "destructive": "destructive",
    "idempotent": "idempotent",
    "open_world": "open-world",
}


@register.filter(is_safe=True)
def markdown(text: str | None) -> SafeString:
    return render_markdown(text or "")


@register.filter
def markdown_text(text: str | None) -> str:
    return markdown_to_text(text or "")


@register.filter
def factor_name(code: str) -> str:
    return FACTOR_NAMES.get(code, code)


@register.filter
def entry_url(entry: CatalogEntry) -> str:
    return reverse(f"catalog:{entry.kind}", args=[entry.name])


@register.filter
def capability_hints(capability: Capability) -> list[dict[str, Any]]:
    """Each hint the descriptor stated, as {label, value}; unstated hints are left out (they count as worst)."""
    hints = []
    for field, label in HINT_LABELS.items():
        value = getattr(capability, field)
        if value is not None:
            hints.append({"field": field, "label": label, "value": value})
    return hints


@register.filter
def change_lines(changes: Any) -> list[dict[str, Any]]:
    """An audit event's changes as rows: {field, before, after} for before/after pairs, {field, value} otherwise."""
    if not isinstance(changes, Mapping):
        return [{"field": "", "value": changes}] if changes else []
    rows: list[dict[str, Any]] = []
    for field, change in changes.items():
        if isinstance(change, Mapping) and set(change) == {"before", "after"}:
            rows.append({"field": field, "before": change["before"], "after": change["after"], "diff": True})
        else:
            rows.append({"field": field, "value": change, "diff": False})
    return rows


def _base_query(request: HttpRequest) -> list[tuple[str, str]]:
    """The current query without the page and empty values, as pairs grouped by name; worked out once per request
    (a catalog page builds some 180 links from it)."""
    cached: list[tuple[str, str]] | None = getattr(request, "_catalog_base_query", None)
    if cached is None:
        cached = [
            (name, value) for name, values in request.GET.lists() if name != "page" for value in values if value != ""
        ]
        request._catalog_base_query = cached  # type: ignore[attr-defined]
    return cached


def _with_values(base: list[tuple[str, str]], name: str, values: list[str]) -> list[tuple[str, str]]:
    """`base` with the values of `name` replaced (where they were, or at the end)."""
    pairs: list[tuple[str, str]] = []
    placed = False
    for key, value in base:
        if key != name:
            pairs.append((key, value))
        elif not placed:
            pairs.extend((name, new) for new in values)
            placed = True
    if not placed:
        pairs.extend((name, new) for new in values)
    return pairs


def _encode(path: str, pairs: list[tuple[str, str]]) -> str:
    encoded = urlencode(pairs)
    return f"{path}?{encoded}" if encoded else path


@register.simple_tag(takes_context=True)
def query_toggle(context: template.Context, name: str, value: Any) -> str:
    """The current query with `value` added to or removed from the values of `name`, back on the first page."""
    request = context["request"]
    base = _base_query(request)
    value = str(value)
    values = [v for key, v in base if key == name]
    values = [v for v in values if v != value] if value in values else [*values, value]
    return _encode(request.path, _with_values(base, name, values))


@register.simple_tag(takes_context=True)
def query_set(context: template.Context, name: str, value: Any = "") -> str:
    """The current query with `name` set to `value` (removed when empty); any change but the page resets paging."""
    request = context["request"]
    values = [] if value in ("", None) else [str(value)]
    return _encode(request.path, _with_values(_base_query(request), name, values))


@register.filter
def words(value: Any) -> str:
    """A stored choice value for reading: pending_review -> pending review."""
    return "" if value is None else str(value).replace("_", " ")


@register.filter
def label(value: Any) -> str:
    """A stored value that has no model field at hand, as a label: pending_review -> Pending review."""
    text = words(value).replace("-", " ")
    return text[:1].upper() + text[1:]


@register.filter
def entry_label(entry: CatalogEntry, field: str) -> str:
    """A search entry's stored choice in the words of its model's choices: pending_review -> Pending review."""
    model = Agent if entry.kind == "agent" else Tool
    value = getattr(entry, field, "")
    choices = dict(model._meta.get_field(field).flatchoices)
    text = str(choices.get(value, words(value)))
    return text[:1].upper() + text[1:]


@register.filter
def data_class_fact(entity: Agent | Tool) -> dict[str, str]:
    """The data class as the risk table counts it (its D factor), and the entity's own when that differs: an
    agent's risk takes the data its granted tools reach, so the facts panel must not say less than the risk."""
    own = entity.get_data_class_display() if entity.data_class else ""
    risk = entity.risk if isinstance(entity.risk, Mapping) else {}
    counted = next((f.get("label", "") for f in risk.get("factors", []) if f.get("code") == "D"), "")
    counted = counted.removesuffix(" data")
    shown = counted or own or "unknown (counted as restricted)"
    return {
        "shown": shown[:1].upper() + shown[1:],
        "own": own if own and own.lower() != counted.lower() else "",
        "driver": str(risk.get("driver", "")),
    }


@register.filter
def safe_url(url: Any) -> str:
    """Only http(s) and mailto links reach an href, whatever got into the database."""
    text = str(url or "").strip()
    return text if text.lower().startswith(("https://", "http://", "mailto:")) else ""
