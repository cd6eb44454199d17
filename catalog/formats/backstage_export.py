"""Exporting portal entities as Backstage catalog-info YAML that `backstage_parse` reads back unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from catalog.formats.backstage import (
    AGENT_COMPONENT_TYPES,
    AGENT_FACTS,
    DEFAULT_PLACEHOLDER_OWNER,
    MODEL_FACTS,
    MODEL_RESOURCE_TYPE,
    OBJECT_NAME_RULE,
    PLACEHOLDER_LIFECYCLE,
    PLACEHOLDERS_KEY,
    PREFIX,
    REMOTE_HEADERS_KEY,
    SOURCE_LOCATION,
    TAGS_KEY,
    TOOL_FACTS,
    Fact,
    _is_strict_dns_label,
    is_backstage_tag,
    is_label_value,
    is_object_name,
    is_prefixed_key,
    is_url,
    normalize_package,
    normalize_skill,
)
from catalog.formats.backstage_parse import parse_entity_ref
from catalog.formats.mcp_registry import (
    CURRENT_SCHEMA_URL,
    MCP_TYPE_BY_TRANSPORT,
    capability_to_mcp_tool,
    normalize_capability,
)
from catalog.formats.safe_yaml import (
    add_core_schema_resolvers,
)
from catalog.formats.types import (
    LIFECYCLES,
    ParsedEntity,
)


class ExportError(ValueError):
    """The entities cannot be written as a catalog Backstage would accept; ``problems`` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("cannot export to Backstage:\n- " + "\n- ".join(problems))
        self.problems = problems


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Quotes every string a YAML 1.2 parser (Backstage's) would read as a non-string."""


add_core_schema_resolvers(_Dumper)
# Keep long values (JSON annotations) on one line: folded lines are valid but unreadable in diffs.
_NO_FOLDING: Final = 1 << 16


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_str)


def _dump(documents: list[Any]) -> str:
    return yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        explicit_start=True,
        width=_NO_FOLDING,
    )


@dataclass(frozen=True)
class _ExportContext:
    namespace: str
    placeholder_owner: str
    children: Mapping[str, list[str]]


def _present(data: Mapping[str, Any], key: str) -> bool:
    # An empty string says nothing, and Backstage rejects empty required strings.
    return data.get(key) not in (None, "")


class _Builder:
    """Builds one Backstage entity and remembers which spec fields are placeholders."""

    def __init__(self, api_kind: str, name: str, context: _ExportContext) -> None:
        self.context = context
        self.metadata: dict[str, Any] = {"name": name}
        if context.namespace != "default":
            self.metadata["namespace"] = context.namespace
        self.labels: dict[str, str] = {}
        self.annotations: dict[str, str] = {}
        self.spec: dict[str, Any] = {}
        self.placeholders: list[str] = []
        self.api_kind = api_kind

    def placeholder(self, spec_field: str, value: Any) -> None:
        self.spec[spec_field] = value
        self.placeholders.append(f"spec.{spec_field}")

    def facts(self, facts: tuple[Fact, ...], data: Mapping[str, Any]) -> None:
        for fact in facts:
            if not _present(data, fact.data_key):
                continue
            try:
                raw = fact.codec.encode(data[fact.data_key])
            except ValueError as error:
                raise ValueError(f"{fact.data_key} {error}") from None
            target = self.labels if fact.label and is_label_value(raw) else self.annotations
            target[fact.key] = raw

    def owner_and_lifecycle(self, data: Mapping[str, Any]) -> None:
        if _present(data, "lifecycle"):
            self.spec["lifecycle"] = data["lifecycle"]
        else:
            self.placeholder("lifecycle", PLACEHOLDER_LIFECYCLE)
        if _present(data, "owner"):
            self.spec["owner"] = f"group:{data['owner']}"
        else:
            self.placeholder("owner", f"group:{self.context.placeholder_owner}")

    def descriptive(self, data: Mapping[str, Any]) -> None:
        for key in ("title", "description"):
            if _present(data, key):
                self.metadata[key] = data[key]
        foreign = dict(data.get("annotations") or {})
        clashing = [key for key in foreign if key.startswith(PREFIX)]
        if clashing:
            raise ValueError(f"annotations must not use the {PREFIX} prefix: {', '.join(clashing)}")
        self.annotations.update(foreign)
        if _present(data, "repository_url"):
            self.annotations[SOURCE_LOCATION] = f"url:{data['repository_url']}"
        if _present(data, "tags"):
            tags = list(data["tags"])
            self.metadata["tags"] = [tag for tag in tags if is_backstage_tag(tag)]
            if len(self.metadata["tags"]) != len(tags):
                self.annotations[TAGS_KEY] = json.dumps(tags, ensure_ascii=False)
        if _present(data, "links"):
            self.metadata["links"] = [_export_link(link) for link in data["links"]]

    def build(self) -> dict[str, Any]:
        if self.placeholders:
            self.annotations[PLACEHOLDERS_KEY] = ",".join(self.placeholders)
        if self.labels:
            self.metadata["labels"] = self.labels
        if self.annotations:
            self.metadata["annotations"] = self.annotations
        ordered = {key: self.metadata[key] for key in _METADATA_ORDER if key in self.metadata}
        return {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": self.api_kind,
            "metadata": ordered,
            "spec": self.spec,
        }


_METADATA_ORDER: Final = (
    "name",
    "namespace",
    "title",
    "description",
    "labels",
    "annotations",
    "tags",
    "links",
)


def _export_link(link: Mapping[str, Any]) -> dict[str, str]:
    exported = {"url": link["url"]}
    if isinstance(link.get("title"), str) and link["title"].strip():
        exported["title"] = link["title"]
    return exported


def _refs(kind: str, names: Iterable[str]) -> list[str]:
    return [f"{kind}:{name}" for name in names]


def _build_agent(data: Mapping[str, Any], context: _ExportContext) -> dict[str, Any]:
    builder = _Builder("Component", data["name"], context)
    builder.spec["type"] = AGENT_COMPONENT_TYPES[0]
    builder.descriptive(data)
    builder.owner_and_lifecycle(data)
    if _present(data, "tools"):
        builder.spec["consumesApis"] = _refs("api", data["tools"])
    if _present(data, "calls"):
        builder.spec["dependsOn"] = _refs("component", data["calls"])
    builder.facts(AGENT_FACTS, data)
    return builder.build()


def _repository_source(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    parts = host.split(".")
    return parts[-2] if len(parts) >= 2 else host or "git"


def _server_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """A server.json (current camelCase schema) reconstructed from the catalog data."""
    server: dict[str, Any] = {"$schema": CURRENT_SCHEMA_URL}
    for ours, theirs in (("registry_name", "name"), ("title", "title"), ("description", "description")):
        if _present(data, ours):
            server[theirs] = data[ours]
    if _present(data, "version"):
        server["version"] = data["version"]
    if _present(data, "repository_url"):
        url = data["repository_url"]
        server["repository"] = {"url": url, "source": _repository_source(url)}
    secrets = set(data.get("secrets") or [])
    packages = []
    for package in data.get("packages") or []:
        entry = {
            "registryType": package.get("registry_type"),
            "identifier": package.get("identifier"),
            "version": package.get("version"),
            "runtimeHint": package.get("runtime_hint"),
        }
        if package.get("transport"):
            entry["transport"] = {"type": MCP_TYPE_BY_TRANSPORT[package["transport"]]}
        packages.append({key: value for key, value in entry.items() if value is not None})
    if packages:
        server["packages"] = packages
    remotes = [
        {
            "type": remote.get("type"),
            "url": remote.get("url"),
            "headers": [{"name": name, "isSecret": name in secrets} for name in remote.get("headers") or []],
        }
        for remote in data.get("remotes") or []
    ]
    if remotes:
        server["remotes"] = [{key: value for key, value in remote.items() if value} for remote in remotes]
    return server


def _mcp_definition(data: Mapping[str, Any]) -> str:
    tools = [capability_to_mcp_tool(capability) for capability in data.get("capabilities") or []]
    header = "# Generated by Agent Portal: this MCP server's server.json and its tools.\n"
    return header + yaml.dump(
        {"server": _server_json(data), "tools": tools}, Dumper=_Dumper, sort_keys=False, allow_unicode=True
    )


def _openapi_stub(data: Mapping[str, Any]) -> str:
    info = {"title": data.get("title") or data["name"], "version": data.get("version") or "unknown"}
    return yaml.dump({"openapi": "3.0.3", "info": info, "paths": {}}, Dumper=_Dumper, sort_keys=False)


def _stdio_command(data: Mapping[str, Any]) -> str:
    """Something Backstage can show as a stdio server's 'URL': its launch command or endpoint."""
    for package in data.get("packages") or []:
        launcher = package.get("runtime_hint") or package.get("registry_type") or ""
        identifier = package.get("identifier") or ""
        version = f"@{package['version']}" if package.get("version") else ""
        if identifier:
            return f"{launcher} {identifier}{version}".strip()
    return data.get("endpoint_url") or "stdio"


def _build_tool(data: Mapping[str, Any], context: _ExportContext) -> dict[str, Any]:
    builder = _Builder("API", data["name"], context)
    is_mcp = data.get("kind") == "mcp_server"
    if _present(data, "kind"):
        builder.spec["type"] = "mcp-server" if is_mcp else "openapi"
    else:
        builder.placeholder("type", "openapi")
    builder.descriptive(data)
    builder.owner_and_lifecycle(data)
    if is_mcp:
        builder.spec["definition"] = _mcp_definition(data)
    elif _present(data, "definition") and data["definition"].strip():
        builder.spec["definition"] = data["definition"]
    else:
        builder.placeholder("definition", _openapi_stub(data))
    remotes = data.get("remotes")
    if remotes:
        builder.spec["remotes"] = [{"type": remote["type"], "url": remote["url"]} for remote in remotes]
        if any(remote.get("headers") for remote in remotes):
            headers = [list(remote.get("headers") or []) for remote in remotes]
            builder.annotations[REMOTE_HEADERS_KEY] = json.dumps(headers, ensure_ascii=False)
    elif is_mcp:
        transport = MCP_TYPE_BY_TRANSPORT.get(data.get("transport") or "stdio", "stdio")
        builder.placeholder("remotes", [{"type": transport, "url": _stdio_command(data)}])
    builder.facts(TOOL_FACTS, data)
    return builder.build()


def _build_team(data: Mapping[str, Any], context: _ExportContext) -> dict[str, Any]:
    builder = _Builder("Group", data["name"], context)
    builder.spec["type"] = "team"
    if _present(data, "description"):
        builder.metadata["description"] = data["description"]
    profile = {key: data[ours] for ours, key in (("title", "displayName"), ("email", "email")) if _present(data, ours)}
    if profile:
        builder.spec["profile"] = profile
    if _present(data, "parent"):
        builder.spec["parent"] = f"group:{data['parent']}"
    builder.spec["children"] = _refs("group", context.children.get(data["name"], []))
    if _present(data, "members"):
        builder.spec["members"] = _refs("user", data["members"])
    return builder.build()


def _build_user(data: Mapping[str, Any], context: _ExportContext) -> dict[str, Any]:
    builder = _Builder("User", data["username"], context)
    profile = {
        key: data[ours] for ours, key in (("display_name", "displayName"), ("email", "email")) if _present(data, ours)
    }
    if profile:
        builder.spec["profile"] = profile
    if _present(data, "teams"):
        builder.spec["memberOf"] = _refs("group", data["teams"])
    else:
        builder.placeholder("memberOf", [])
    return builder.build()


def _build_model(data: Mapping[str, Any], context: _ExportContext) -> dict[str, Any]:
    builder = _Builder("Resource", data["name"], context)
    if _present(data, "title"):
        builder.metadata["title"] = data["title"]
    builder.spec["type"] = MODEL_RESOURCE_TYPE
    # Models have no owner in Agent Portal, but a Backstage Resource must name one.
    builder.placeholder("owner", f"group:{context.placeholder_owner}")
    builder.facts(MODEL_FACTS, data)
    return builder.build()


# Input shapes the builders rely on; codecs check enums, levels and the JSON-carried lists.
_TEXT_KEYS: Final = frozenset(
    {
        "name", "username", "title", "description", "owner", "repository_url", "a2a_endpoint",
        "a2a_protocol_version", "provider_org", "version", "email", "parent", "display_name", "provider",
        "model_id", "residency", "registry_name", "endpoint_url", "definition",
    }
)  # fmt: skip
_STRUCTURED_LISTS: Final[Mapping[str, Callable[[Any, int], dict[str, Any]]]] = {
    "skills": normalize_skill,
    "capabilities": normalize_capability,
    "packages": normalize_package,
}
_TEXT_LIST_KEYS: Final = frozenset({"models", "calls", "tools", "environments", "tags", "members", "teams", "secrets"})


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("url"), str)
        and (value.get("title") is None or isinstance(value["title"], str))
    )


def _is_remote(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("type"), str)
        and isinstance(value.get("url"), str)
        and bool(value["type"] and value["url"])
        and (value.get("headers") is None or _is_text_list(value["headers"]))
    )


def _structured_list_problem(key: str, value: Any) -> str | None:
    """Check skills/capabilities/packages with the same normalizers the parser uses."""
    if not isinstance(value, list):
        return f"{key} must be a list"
    try:
        for position, item in enumerate(value):
            _STRUCTURED_LISTS[key](item, position)
    except ValueError as error:
        return f"{key}: {error}"
    return None


def _shape_problems(data: Mapping[str, Any]) -> list[str]:
    """Type problems in one entity's data, so building never trips over a wrong type."""
    problems = []
    for key, value in data.items():
        if value is None:
            continue
        if key in _TEXT_KEYS and not isinstance(value, str):
            problems.append(f"{key} must be a string")
        elif key in _TEXT_LIST_KEYS and not _is_text_list(value):
            problems.append(f"{key} must be a list of strings")
        elif key == "lifecycle" and value not in LIFECYCLES:
            problems.append(f"lifecycle must be one of {', '.join(LIFECYCLES)}")
        elif key == "annotations" and not (
            isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            problems.append("annotations must map strings to strings")
        elif key == "links" and not (isinstance(value, list) and all(_is_link(link) for link in value)):
            problems.append("links must be a list of {url, title}")
        elif key == "remotes" and not (isinstance(value, list) and all(_is_remote(r) for r in value)):
            problems.append("remotes must be a list of {type, url, headers} with a type and a url")
        elif key in _STRUCTURED_LISTS and (problem := _structured_list_problem(key, value)):
            problems.append(problem)
    return problems


def _input_problems(kind: str, data: Any) -> list[str]:
    if kind not in _BUILDERS:
        return [f"unknown kind; expected one of {', '.join(_BUILDERS)}"]
    if not isinstance(data, Mapping):
        return ["data must be a mapping"]
    name_key = "username" if kind == "user" else "name"
    if not isinstance(data.get(name_key), str) or not data[name_key]:
        return [f"needs a {name_key}"]
    return _shape_problems(data)


_BUILDERS: Final[Mapping[str, Callable[[Mapping[str, Any], _ExportContext], dict[str, Any]]]] = {
    "agent": _build_agent,
    "tool": _build_tool,
    "team": _build_team,
    "user": _build_user,
    "model": _build_model,
}


def _as_kind_and_data(entity: ParsedEntity | Mapping[str, Any]) -> tuple[str, Any]:
    if isinstance(entity, ParsedEntity):
        return entity.kind, entity.data
    if not isinstance(entity, Mapping):
        return "", entity
    return str(entity.get("kind")), entity.get("data")


def _children_by_team(items: list[tuple[str, Mapping[str, Any]]]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for kind, data in items:
        if kind == "team" and _present(data, "parent") and _present(data, "name"):
            children.setdefault(data["parent"], []).append(data["name"])
    return children


_REF_FIELDS: Final = ("owner", "parent", "consumesApis", "dependsOn", "children", "members", "memberOf")
# Backstage's ReservedFieldsEntityPolicy: no spec field, label or annotation may use these keys.
RESERVED_FIELDS: Final = frozenset(
    {"apiVersion", "kind", "uid", "etag", "generation", "name", "namespace", "labels", "annotations", "spec"}
)


def _policy_problems(entity: Mapping[str, Any]) -> list[str]:
    """What Backstage's FieldFormatEntityPolicy (default validators) and reserved fields reject."""
    metadata, spec = entity["metadata"], entity["spec"]
    problems = []
    if not is_object_name(metadata["name"]):
        problems.append(f"metadata.name {metadata['name']!r} {OBJECT_NAME_RULE}")
    for key, value in metadata.get("labels", {}).items():
        if not is_prefixed_key(key) or not is_label_value(value):
            problems.append(f"label {key}={value!r} is not a valid Backstage label")
    for key, value in metadata.get("annotations", {}).items():
        if not is_prefixed_key(key) or not isinstance(value, str):
            problems.append(f"annotation {key!r} must be a [prefix/]name key with a string value")
        if key in RESERVED_FIELDS:
            problems.append(f"annotation {key!r} uses a name Backstage reserves")
    for link in metadata.get("links", []):
        if not is_url(link["url"]):
            problems.append(f"link {link['url']!r} is not a URL")
    for ref_field in _REF_FIELDS:
        refs = spec.get(ref_field)
        for ref in [refs] if isinstance(refs, str) else refs or []:
            if not is_object_name(parse_entity_ref(ref, "group")[1]):
                problems.append(f"spec.{ref_field} reference {ref!r}: the name {OBJECT_NAME_RULE}")
    return problems


def export_backstage(
    entities: Iterable[ParsedEntity | Mapping[str, Any]],
    *,
    namespace: str = "default",
    placeholder_owner: str = DEFAULT_PLACEHOLDER_OWNER,
) -> str:
    """Write entities (``ParsedEntity`` or ``{"kind": ..., "data": {...}}``) as catalog-info YAML.

    Raises ``ExportError`` listing every problem instead of writing a file Backstage rejects.
    """
    problems = []
    if not _is_strict_dns_label(namespace):
        problems.append(f"namespace {namespace!r} must be a DNS label")
    if not is_object_name(placeholder_owner):
        problems.append(f"placeholder_owner {placeholder_owner!r} {OBJECT_NAME_RULE}")
    valid: list[tuple[str, str, Mapping[str, Any]]] = []
    for position, (kind, data) in enumerate(_as_kind_and_data(entity) for entity in entities):
        name = data.get("name") or data.get("username") if isinstance(data, Mapping) else None
        label = f"entity {position} ({kind or '?'} {name!r})"
        found = _input_problems(kind, data)
        problems += [f"{label}: {problem}" for problem in found]
        if not found:
            valid.append((label, kind, data))
    context = _ExportContext(namespace, placeholder_owner, _children_by_team([(k, d) for _, k, d in valid]))
    documents = []
    for label, kind, data in valid:
        try:
            document = _BUILDERS[kind](data, context)
        except ValueError as error:
            problems.append(f"{label}: {error}")
            continue
        problems += [f"{label}: {problem}" for problem in _policy_problems(document)]
        documents.append(document)
    if problems:
        raise ExportError(problems)
    return _dump(documents)
