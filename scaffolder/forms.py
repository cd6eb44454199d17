"""A Django form generated from a golden path's JSON Schema, with htmx live validation per field.

Django fields only convert what the browser sends (text, numbers, checkboxes, selections); every rule comes from
the schema and the catalog through ``services.run_check_values``, so the form, the API and the CLI give the same
messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django import forms

from scaffolder.errors import ScaffoldError
from scaffolder.models import ScaffoldRun

TEXTAREA_FROM_LENGTH = 200
PUBLISHER_FIELD = "publisher"
LINES_HELP = "One per line."

Checker = Callable[[dict[str, Any], str], dict[str, Any]]


class SchemaChoiceField(forms.ChoiceField):
    """A select whose value the schema (or the catalog) judges, so every message reads the same."""

    def valid_value(self, value: Any) -> bool:
        return True


class SchemaMultipleChoiceField(forms.MultipleChoiceField):
    def valid_value(self, value: Any) -> bool:
        return True


def _option_label(option: object) -> str:
    """An enum value as people read it, like the model choices' labels: code_review -> code review (the value
    submitted stays the same)."""
    return str(option).replace("_", " ")


def _label(name: str, schema: Mapping[str, Any]) -> str:
    return str(schema.get("title") or name.replace("_", " ").capitalize())


def _live(widget: forms.Widget, *, name: str, url: str | None, trigger: str) -> None:
    if url is None:
        return
    widget.attrs.update(
        {
            "hx-post": url,
            "hx-trigger": trigger,
            "hx-target": f"#errors-{name}",
            "hx-swap": "innerHTML",
            "hx-include": "closest form",
            "hx-vals": json.dumps({"_field": name}),
            "aria-describedby": f"errors-{name}",
        }
    )


def field_for(
    name: str,
    schema: Mapping[str, Any],
    *,
    owner_choices: Sequence[tuple[str, str]],
    tool_choices: Sequence[tuple[str, str]],
    validate_url: str | None,
) -> forms.Field:
    """The form field for one schema property (see the module docstring for what each type becomes)."""
    kind = schema.get("type")
    common: dict[str, Any] = {
        "label": _label(name, schema),
        "help_text": str(schema.get("description") or ""),
        "required": False,  # "required" is the schema's rule; its message is the same everywhere
    }
    default = schema.get("default")
    field: forms.Field
    typing_trigger = "change, keyup changed delay:500ms"
    if kind == "string" and name == "owner" and owner_choices:
        field = SchemaChoiceField(choices=[("", "Choose a team"), *owner_choices], initial=default, **common)
        trigger = "change"
    elif kind == "string" and "enum" in schema:
        choices = [(str(option), _option_label(option)) for option in schema["enum"]]
        if default is None:
            choices.insert(0, ("", "Choose one"))
        field = SchemaChoiceField(choices=choices, initial=default, **common)
        trigger = "change"
    elif kind == "string":
        long_text = int(schema.get("maxLength") or TEXTAREA_FROM_LENGTH + 1) > TEXTAREA_FROM_LENGTH
        widget = forms.Textarea(attrs={"rows": 3}) if long_text else forms.TextInput()
        field = forms.CharField(widget=widget, initial=default, strip=True, **common)
        trigger = typing_trigger
    elif kind in ("integer", "number"):
        field_class = forms.IntegerField if kind == "integer" else forms.FloatField
        # Bounds are shown by the browser; the schema gives the message when they are broken.
        bounds = {key[:3]: schema[key] for key in ("minimum", "maximum") if key in schema}
        field = field_class(widget=forms.NumberInput(attrs=bounds), initial=default, **common)
        trigger = typing_trigger
    elif kind == "boolean":
        field = forms.BooleanField(initial=bool(default), **common)
        trigger = "change"
    elif kind == "array" and name == "tools":
        field = SchemaMultipleChoiceField(choices=list(tool_choices), initial=default or [], **common)
        trigger = "change"
    elif kind == "array" and isinstance(schema.get("items"), Mapping) and "enum" in schema["items"]:
        choices = [(str(option), _option_label(option)) for option in schema["items"]["enum"]]
        field = SchemaMultipleChoiceField(choices=choices, initial=default or [], **common)
        trigger = "change"
    elif kind == "array":
        common["help_text"] = f"{common['help_text']} {LINES_HELP}".strip()
        field = forms.CharField(
            widget=forms.Textarea(attrs={"rows": 3}), initial="\n".join(map(str, default or [])), **common
        )
        field.lines = True  # type: ignore[attr-defined]
        trigger = typing_trigger
    else:
        field = forms.CharField(initial=default, **common)
        trigger = typing_trigger
    _live(field.widget, name=name, url=validate_url, trigger=trigger)
    return field


class ParametersForm(forms.Form):
    """Fields in schema order (required first), then where to publish."""

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        schema: Mapping[str, Any],
        owner_choices: Sequence[tuple[str, str]],
        tool_choices: Sequence[tuple[str, str]],
        publishers: Sequence[str],
        check: Checker,
        validate_url: str | None = None,
    ) -> None:
        super().__init__(data, label_suffix="")
        self.schema = schema
        self.check = check
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        ordered = [name for name in required if name in properties] + [n for n in properties if n not in required]
        for name in ordered:
            self.fields[name] = field_for(
                name,
                properties[name],
                owner_choices=owner_choices,
                tool_choices=tool_choices,
                validate_url=validate_url,
            )
        labels = dict(ScaffoldRun.Publisher.choices)
        self.fields[PUBLISHER_FIELD] = forms.ChoiceField(
            label="Publish to",
            choices=[(key, labels.get(key, key)) for key in publishers],
            initial=publishers[0] if publishers else ScaffoldRun.Publisher.NONE,
            help_text="Where the new repository goes; a zip download is always offered.",
        )
        _live(self.fields[PUBLISHER_FIELD].widget, name=PUBLISHER_FIELD, url=validate_url, trigger="change")
        self.schema_fields = [self[name] for name in ordered]
        self.required_names = set(required)

    def values(self) -> dict[str, Any]:
        """The parameter values typed in; empty optional ones are left out so the schema's defaults apply."""
        values: dict[str, Any] = {}
        for name, field in self.fields.items():
            if name == PUBLISHER_FIELD or name not in self.cleaned_data:
                continue
            value = self.cleaned_data[name]
            if getattr(field, "lines", False):
                value = [line.strip() for line in str(value or "").splitlines() if line.strip()]
                if not value and name not in self.required_names:
                    continue
            elif isinstance(field, forms.BooleanField):
                value = bool(value)
            elif isinstance(field, forms.MultipleChoiceField):
                value = list(value or [])
            elif value in (None, ""):
                continue
            values[name] = value
        return values

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            self.cleaned_values = self.check(self.values(), cleaned.get(PUBLISHER_FIELD, ScaffoldRun.Publisher.NONE))
        except ScaffoldError as exc:
            for name, messages in exc.errors.items():
                target = name if name in self.fields else None
                if target is not None and target in self._errors:
                    continue  # the field could not even be read (e.g. not a number): that message stands
                for message in messages:
                    self.add_error(target, message)
        return cleaned
