"""Forms collect input and turn it into the plain data shape of `catalog.services`; the services validate it.

Validation that needs the database or the rubric stays in the services, so a form, the API and an import can
never accept different things. Forms only parse what people type (comma lists, one capability per line) and put
the services' errors back on the right field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q, QuerySet
from django.template.defaultfilters import filesizeformat

from catalog.models import Agent, Capability, DataClass, Lifecycle, Team, Tool
from catalog.services import CAPABILITY_HINTS

UNKNOWN = "unknown (counted as the worst case)"
NOT_SET = "not set"

CAPABILITY_HELP = (
    "One capability per line: its name, a colon, then the hints it declares, separated by commas. "
    "Hints: read_only, destructive, idempotent, open_world; put “not ” in front for an explicit no. "
    "A hint left out is unknown and counts as the worst case. Optionally add “ -- ” and a description. "
    "Example: “list_issues: read_only, not open_world -- Lists issues” or “delete_repo: destructive, idempotent”."
)
LIST_HELP = "Separate with commas."
LINKS_HELP = "One link per line: the URL, then optionally a title, e.g. “https://grafana.example/d/x Dashboard”."
_LIST_SPLIT = re.compile(r"[,\n]")


def _choices(choices: Iterable[tuple[Any, Any]], empty: str | None) -> list[tuple[Any, Any]]:
    listed = [(value, str(label)) for value, label in choices]
    return [("", empty), *listed] if empty is not None else listed


def split_list(text: str) -> list[str]:
    return [item.strip() for item in _LIST_SPLIT.split(text or "") if item.strip()]


def join_list(values: Iterable[Any]) -> str:
    return ", ".join(str(value) for value in values)


# --- capabilities -------------------------------------------------------------------------------------------


def capability_line(capability: Capability | Mapping[str, Any]) -> str:
    def get(field: str) -> Any:
        return capability.get(field) if isinstance(capability, Mapping) else getattr(capability, field)

    hints = [hint if get(hint) else f"not {hint}" for hint in CAPABILITY_HINTS if get(hint) is not None]
    line = str(get("name"))
    if hints:
        line += ": " + ", ".join(hints)
    description = " ".join(str(get("description") or "").split())
    if description:
        line += f" -- {description}"
    return line


def parse_capabilities(text: str) -> tuple[list[dict[str, Any]], list[int], list[str]]:
    """Returns the capabilities, the line number of each, and problems naming their line."""
    capabilities: list[dict[str, Any]] = []
    line_numbers: list[int] = []
    problems: list[str] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        head, _, description = line.partition(" -- ")
        if head.endswith(" --"):
            head = head[:-3]
        name, _, hint_text = head.partition(":")
        capability: dict[str, Any] = {"name": name.strip(), "description": description.strip()}
        capability.update(dict.fromkeys(CAPABILITY_HINTS))
        for word in (w.strip() for w in hint_text.split(",")):
            if not word:
                continue
            value = True
            lowered = word.lower()
            for negation in ("not ", "not_", "!"):
                if lowered.startswith(negation):
                    value, lowered = False, lowered[len(negation) :].strip()
            hint = lowered.replace("-", "_").replace(" ", "_")
            if hint not in CAPABILITY_HINTS:
                problems.append(
                    f"Line {number}: “{word}” is not a hint; use {', '.join(CAPABILITY_HINTS)} "
                    "(with “not ” in front for an explicit no)."
                )
            elif capability[hint] is not None and capability[hint] != value:
                problems.append(f"Line {number}: {hint} is given both as yes and as no.")
            else:
                capability[hint] = value
        capabilities.append(capability)
        line_numbers.append(number)
    return capabilities, line_numbers, problems


# --- links ----------------------------------------------------------------------------------------------------


def links_text(links: Iterable[Mapping[str, Any]]) -> str:
    lines = []
    for link in links:
        if isinstance(link, Mapping) and link.get("url"):
            lines.append(f"{link['url']} {link.get('title') or ''}".strip())
    return "\n".join(lines)


def parse_links(text: str, existing: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """A line that matches an existing link keeps that link as it was (with keys the form does not show)."""
    known = {(link.get("url"), link.get("title") or ""): dict(link) for link in existing if isinstance(link, Mapping)}
    links = []
    for raw in (text or "").splitlines():
        url, _, title = raw.strip().partition(" ")
        if not url:
            continue
        title = title.strip()
        links.append(known.get((url, title)) or ({"url": url, "title": title} if title else {"url": url}))
    return links


# --- agents and tools -----------------------------------------------------------------------------------------


class TeamChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.display_name} ({obj.name})" if obj.title else obj.name


class CatalogEntityForm(forms.Form):
    """Shared by the agent and tool forms: owner choices, list parsing, and the services' errors on fields."""

    FIELDSETS: tuple[tuple[str, tuple[str, ...]], ...] = ()
    LIST_FIELDS: tuple[str, ...] = ("tags",)
    # Service error keys that belong to a field under another name.
    ERROR_ALIASES = {"spec.owner": "owner", "secret_names": "secrets", "requested_tools": "tools"}

    name = forms.CharField(
        max_length=63,
        help_text="A DNS label: lowercase letters, digits and “-”. It cannot be changed later.",
    )
    owner = TeamChoiceField(queryset=Team.objects.none(), to_field_name="name", empty_label=None)
    title = forms.CharField(max_length=200, required=False)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="Markdown. Raw HTML is not allowed.",
    )
    lifecycle = forms.ChoiceField(choices=_choices(Lifecycle.choices, None), initial=Lifecycle.EXPERIMENTAL)
    data_class = forms.ChoiceField(
        choices=_choices(DataClass.choices, UNKNOWN),
        required=False,
        help_text="The most sensitive data it touches. Unknown counts as restricted.",
    )
    version = forms.CharField(max_length=100, required=False)
    repository_url = forms.CharField(max_length=500, required=False, widget=forms.URLInput, label="Repository URL")
    tags = forms.CharField(required=False, help_text=LIST_HELP)
    links = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text=LINKS_HELP)

    def __init__(
        self,
        *args: Any,
        owner_teams: QuerySet[Team],
        instance: Agent | Tool | None = None,
        **kwargs: Any,
    ) -> None:
        self.instance = instance
        if instance is not None:
            kwargs["initial"] = {**self.initial_for(instance), **(kwargs.get("initial") or {})}
        super().__init__(*args, **kwargs)
        owner_field = self.fields["owner"]
        assert isinstance(owner_field, forms.ModelChoiceField)
        if instance is not None:
            # The current owner stays selectable even for an admin's edit of a team they are not in.
            owner_teams = Team.objects.filter(Q(pk__in=owner_teams.values("pk")) | Q(pk=instance.owner_id))
            del self.fields["name"]
        owner_field.queryset = owner_teams.order_by("name")
        self._capability_lines: list[int] = []

    @classmethod
    def initial_for(cls, instance: Agent | Tool) -> dict[str, Any]:
        initial: dict[str, Any] = {}
        for name in cls.base_fields:
            if name in ("name", "owner", "links", *cls.LIST_FIELDS):
                continue
            value = getattr(instance, name, None)
            initial[name] = "" if value is None else value
        initial["owner"] = instance.owner.name
        initial["links"] = links_text(instance.links)
        initial["tags"] = join_list(instance.tags)
        return initial

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(legend, [self[name] for name in names if name in self.fields]) for legend, names in self.FIELDSETS]

    def service_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in self.fields:
            value = self.cleaned_data.get(name)
            if name == "owner":
                value = value.name if value is not None else ""
            elif name in self.LIST_FIELDS:
                value = split_list(value or "")
            elif name == "links":
                value = parse_links(value or "", self.instance.links if self.instance is not None else ())
            data[name] = value
        return data

    def add_service_errors(self, errors: Mapping[str, list[str]]) -> None:
        for key, messages in errors.items():
            field, where = self._field_for_error(key)
            for message in messages:
                if field is not None:
                    self.add_error(field, f"{where}: {message}" if where else message)
                else:
                    self.add_error(None, f"{key}: {message}" if key and key != "__all__" else message)

    def _field_for_error(self, key: str) -> tuple[str | None, str]:
        base = re.split(r"[\[.]", key, maxsplit=1)[0]
        base = self.ERROR_ALIASES.get(key, self.ERROR_ALIASES.get(base, base))
        if base not in self.fields:
            return None, ""
        position = re.match(r"capabilities\[(\d+)\]", key)
        if base == "capabilities" and position:
            index = int(position.group(1))
            line = self._capability_lines[index] if index < len(self._capability_lines) else index + 1
            return base, f"Line {line}"
        return base, ""


class AgentForm(CatalogEntityForm):
    FIELDSETS = (
        ("About", ("name", "owner", "title", "description", "lifecycle", "agent_type", "version", "tags")),
        ("Risk facts", ("autonomy_level", "human_in_loop", "data_class")),
        ("Runtime and relations", ("runtime", "environments", "models", "calls", "tools")),
        (
            "Endpoints and links",
            ("repository_url", "a2a_endpoint", "a2a_protocol_version", "provider_org", "links"),
        ),
    )
    LIST_FIELDS = ("tags", "environments", "models", "calls", "tools")

    agent_type = forms.ChoiceField(choices=_choices(Agent.AgentType.choices, None), initial=Agent.AgentType.OTHER)
    autonomy_level = forms.TypedChoiceField(
        choices=_choices(Agent.Autonomy.choices, UNKNOWN),
        coerce=int,
        empty_value=None,
        required=False,
        help_text="How much it does without a person. Unknown counts as level 5.",
    )
    human_in_loop = forms.ChoiceField(
        choices=_choices(Agent.HumanInLoop.choices, UNKNOWN),
        required=False,
        help_text="Who checks its actions. Unknown counts as none.",
    )
    runtime = forms.ChoiceField(choices=_choices(Agent.Runtime.choices, NOT_SET), required=False)
    environments = forms.CharField(required=False, help_text=LIST_HELP + " For example: staging, production.")
    models = forms.CharField(required=False, help_text="Names of models in the catalog. " + LIST_HELP)
    calls = forms.CharField(required=False, help_text="Names of other agents it calls. " + LIST_HELP)
    tools = forms.CharField(
        required=False,
        label="Requested tools",
        help_text="Tool names it asks for; access itself needs an approved grant. " + LIST_HELP,
    )
    a2a_endpoint = forms.CharField(max_length=500, required=False, widget=forms.URLInput, label="A2A endpoint")
    a2a_protocol_version = forms.CharField(max_length=20, required=False, label="A2A protocol version")
    provider_org = forms.CharField(max_length=200, required=False, label="Provider organisation")

    @classmethod
    def initial_for(cls, instance: Agent | Tool) -> dict[str, Any]:
        assert isinstance(instance, Agent)
        initial = super().initial_for(instance)
        initial.update(
            environments=join_list(instance.environments),
            models=join_list(model.name for model in instance.models_used.all()),
            calls=join_list(agent.name for agent in instance.calls.all()),
            tools=join_list(instance.requested_tools),
        )
        return initial


class ToolForm(CatalogEntityForm):
    FIELDSETS = (
        ("About", ("name", "owner", "title", "description", "kind", "lifecycle", "version", "registry_name", "tags")),
        ("Risk facts", ("data_class", "reach", "credential_scope", "capabilities")),
        ("Connection", ("endpoint_url", "transport", "auth_scheme", "secrets")),
        ("Links and definition", ("repository_url", "links", "definition")),
    )
    LIST_FIELDS = ("tags", "secrets")

    kind = forms.ChoiceField(choices=_choices(Tool.Kind.choices, None), initial=Tool.Kind.MCP_SERVER)
    registry_name = forms.CharField(
        max_length=200, required=False, help_text="Its name in an MCP registry, e.g. io.github.acme/issues."
    )
    reach = forms.ChoiceField(
        choices=_choices(Tool.Reach.choices, UNKNOWN),
        required=False,
        help_text="What it can reach. Unknown counts as open world.",
    )
    credential_scope = forms.ChoiceField(
        choices=_choices(Tool.CredentialScope.choices, UNKNOWN),
        required=False,
        help_text="The credentials it acts with. Unknown counts as admin.",
    )
    capabilities = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}), required=False, help_text=CAPABILITY_HELP
    )
    endpoint_url = forms.CharField(max_length=500, required=False, widget=forms.URLInput, label="Endpoint URL")
    transport = forms.ChoiceField(choices=_choices(Tool.Transport.choices, NOT_SET), required=False)
    auth_scheme = forms.ChoiceField(choices=_choices(Tool.AuthScheme.choices, NOT_SET), required=False)
    secrets = forms.CharField(
        required=False,
        label="Secret names",
        help_text="Names only, e.g. GITHUB_TOKEN; values are never stored here. " + LIST_HELP,
    )
    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        required=False,
        label="OpenAPI definition",
        help_text="For HTTP APIs.",
    )

    @classmethod
    def initial_for(cls, instance: Agent | Tool) -> dict[str, Any]:
        assert isinstance(instance, Tool)
        initial = super().initial_for(instance)
        initial.update(
            registry_name=instance.registry_name or "",
            capabilities="\n".join(capability_line(cap) for cap in instance.capabilities.all()),
            secrets=join_list(instance.secret_names),
        )
        return initial

    def clean_capabilities(self) -> list[dict[str, Any]]:
        capabilities, self._capability_lines, problems = parse_capabilities(self.cleaned_data.get("capabilities", ""))
        if problems:
            raise forms.ValidationError(problems)
        return capabilities

    def service_data(self) -> dict[str, Any]:
        data = super().service_data()
        data["registry_name"] = data.get("registry_name") or None
        return data


# --- import ---------------------------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data if item]
        return [super().clean(data, initial)] if data else []


class ImportForm(forms.Form):
    uploads = MultipleFileField(
        label="Files",
        required=False,
        help_text="Backstage catalog-info.yaml, MCP server.json or A2A agent cards; several files at once.",
    )
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        required=False,
        label="Or paste descriptors",
        help_text="YAML or JSON; separate several YAML documents with “---”.",
    )
    default_owner = TeamChoiceField(
        queryset=Team.objects.none(),
        to_field_name="name",
        required=False,
        empty_label="(none: every descriptor names its owner)",
        help_text="Owner for formats that do not name one (MCP server.json, A2A agent cards).",
    )
    dry_run = forms.BooleanField(required=False, label="Dry run: check everything, save nothing")
    adopt = forms.BooleanField(
        required=False,
        label="Adopt entities another source owns (audited)",
        help_text="Without it, an entity created by another location, file or run is refused as a conflict.",
    )

    PASTED_SOURCE = "pasted text"

    def __init__(
        self, *args: Any, owner_teams: QuerySet[Team], max_bytes: int, can_adopt: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        owner_field = self.fields["default_owner"]
        assert isinstance(owner_field, forms.ModelChoiceField)
        owner_field.queryset = owner_teams.order_by("name")
        self.max_bytes = max_bytes
        if not can_adopt:  # platform admins only (catalog.importing)
            del self.fields["adopt"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        files: list[UploadedFile] = cleaned.get("uploads") or []
        text: str = cleaned.get("text") or ""
        if not files and not text.strip():
            raise forms.ValidationError("Choose one or more files or paste a descriptor.")
        total = sum(upload.size or 0 for upload in files) + len(text.encode())
        if total > self.max_bytes:
            raise forms.ValidationError(
                f"The import is {filesizeformat(total)}; at most {filesizeformat(self.max_bytes)} are accepted at "
                "once. Split it into several imports."
            )
        return cleaned

    def inputs(self) -> list[tuple[str, bytes]]:
        inputs = [(upload.name or "upload", upload.read()) for upload in self.cleaned_data["uploads"]]
        text = self.cleaned_data.get("text") or ""
        if text.strip():
            inputs.append((self.PASTED_SOURCE, text.encode()))
        return inputs
