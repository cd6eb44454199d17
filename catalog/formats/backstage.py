"""Backstage ``catalog-info.yaml`` <-> Agent Portal entities (parse and export, symmetric).

What is read
------------
==========================================  ===========  ==========================================
Backstage entity                            catalog kind  notes
==========================================  ===========  ==========================================
Component, spec.type ``ai-agent``/``agent``  agent        exported as ``ai-agent``
API, spec.type ``mcp-server`` / ``openapi``   tool         MCP servers export ``spec.remotes``
Group                                       team
User                                        user
Resource, spec.type ``ai-model``             model
anything else (System, Domain, Location,     --           ``Skipped`` with a reason, never an error
Component ``service``, non-Backstage docs)
==========================================  ===========  ==========================================

What stock Backstage would reject is an error here too (e.g. a Component without
``spec.owner``, an ``openapi`` API without ``spec.definition``); in addition agent, tool and
team names must be DNS labels. Errors carry the document index (0-based) and a field path
such as ``metadata.annotations["agentportal.io/reach"]``.

Backstage-native fields
-----------------------
metadata.name (name; username for users), metadata.title (title), metadata.description
(description), metadata.tags (tags), metadata.links (links: ``{url, title}``),
spec.owner (owner; ``group:default/x``, ``group:x`` and ``x`` all give ``x``), spec.lifecycle
(lifecycle; values other than experimental/production/deprecated are left out with a warning),
spec.consumesApis ``api:x`` (agent tools), spec.dependsOn ``component:x`` (agent calls),
spec.definition (openapi tool definition), spec.remotes ``[{type, url}]`` (tool remotes),
Group spec.profile.displayName (or metadata.title)/email, spec.parent, spec.members; User
spec.profile.displayName/email, spec.memberOf; Resource metadata.title (model title, which the
services layer accepts). A Group's spec.children is derived, so it is not read back. ``backstage.io/source-location: url:<url>`` is
repository_url. Every other annotation not under ``agentportal.io/`` is kept in
``annotations``; labels outside our prefix are not catalogued.

Agent Portal keys (prefix ``agentportal.io/``)
----------------------------------------------
Read from annotations, or from labels of the same key (annotations win). The exporter writes
the enumerations as labels (so Backstage can filter on them) and everything else as annotations.
Lists are either comma-separated (``a,b``) or a JSON array; structured values are JSON.

===========================  =====================  ===========================================
key                          data key (kinds)        value
===========================  =====================  ===========================================
agent-type                   agent_type (agent)      coding|code_review|sre|business|other  (label)
autonomy-level               autonomy_level (agent)  1..5                                   (label)
human-in-loop                human_in_loop (agent)   per_action|sampled|none                (label)
runtime                      runtime (agent)         kubernetes|ci|workstation|saas|serverless (label)
data-class                   data_class (agent,       public|internal|confidential|restricted (label)
                             tool, model)
models                       models (agent)          list of model names
environments                 environments (agent)    list
a2a-endpoint                 a2a_endpoint (agent)    URL
a2a-protocol-version         a2a_protocol_version    text
provider-org                 provider_org (agent)    text
skills                       skills (agent)          JSON ``[{id, name, description, tags}]``
version                      version (agent, tool)   text
tool-kind                    kind (tool)             mcp_server|http_api|cli|saas (label); when
                                                     absent: mcp-server -> mcp_server,
                                                     openapi -> http_api
registry-name                registry_name (tool)    MCP registry name
endpoint-url                 endpoint_url (tool)     URL; when absent, the first remote's URL
transport                    transport (tool)        stdio|streamable_http|sse|http (label);
                                                     when absent, from the first remote's type
auth-scheme                  auth_scheme (tool)      none|api_key|bearer|oauth2|basic|mtls (label)
credential-scope             credential_scope        none|delegated|shared|admin (label)
reach                        reach (tool)            closed|allowlisted|open_world (label)
capabilities                 capabilities (tool)     JSON ``[{name, description, read_only,
                                                     destructive, idempotent, open_world}]``
                                                     (MCP ``Tool`` objects with
                                                     ``annotations.readOnlyHint``... also read)
secrets                      secrets (tool)          list of secret NAMES (never values)
packages                     packages (tool)         JSON ``[{registry_type, identifier, version,
                                                     transport, runtime_hint}]``
remote-headers               remotes[i].headers      JSON list of header-name lists, parallel
                                                     to spec.remotes
model-provider               provider (model)        text
model-id                     model_id (model)        text
hosting                      hosting (model)         saas|self_hosted (label)
residency                    residency (model)       text
tags                         tags (agent, tool)      JSON list; written only when a tag is not a
                                                     valid Backstage tag (metadata.tags then
                                                     holds the valid ones)
placeholders                 --                      spec fields the exporter filled only to
                                                     satisfy Backstage (e.g. ``spec.owner``);
                                                     the parser ignores those fields
===========================  =====================  ===========================================

Export (``export_backstage``) writes one document per entity, in input order, so that a stock
Backstage catalog ingests it without errors: Group gets ``spec.type: team`` and ``spec.children``
(computed from the other teams' parents), APIs always carry ``spec.definition`` (for MCP servers
a generated YAML with the server.json and the tool list), and required fields the data lacks
are filled with placeholders listed in ``agentportal.io/placeholders`` (owner
``group:agentportal-unowned`` by default, lifecycle ``unknown``, an OpenAPI stub, a stdio
remote built from the first package, an empty memberOf). Empty strings count as absent. Data
of the wrong shape, names Backstage rejects, or foreign annotations under our prefix raise
``ExportError`` listing every problem; nothing is written half-valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import yaml

from catalog.formats.mcp_registry import (
    CURRENT_SCHEMA_URL,
    MCP_TYPE_BY_TRANSPORT,
    TRANSPORT_BY_MCP_TYPE,
    capability_to_mcp_tool,
    normalize_capability,
)
from catalog.formats.naming import is_dns_label
from catalog.formats.safe_yaml import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_DOCUMENTS,
    InputRejected,
    YamlDocument,
    add_core_schema_resolvers,
    load_yaml_documents,
    parse_json_text,
)
from catalog.formats.types import (
    AGENT_TYPES,
    AUTH_SCHEMES,
    CREDENTIAL_SCOPES,
    DATA_CLASSES,
    DNS_LABEL_RULE,
    HOSTINGS,
    HUMAN_IN_LOOP,
    LIFECYCLES,
    REACH,
    RUNTIMES,
    TOOL_KINDS,
    TRANSPORTS,
    EntityKind,
    FormatError,
    ParsedEntity,
    ParseResult,
    Skipped,
)

FORMAT: Final = "backstage"
PREFIX: Final = "agentportal.io/"
SOURCE_LOCATION: Final = "backstage.io/source-location"
PLACEHOLDERS_KEY: Final = f"{PREFIX}placeholders"
TAGS_KEY: Final = f"{PREFIX}tags"
REMOTE_HEADERS_KEY: Final = f"{PREFIX}remote-headers"
AGENT_COMPONENT_TYPES: Final = ("ai-agent", "agent")
TOOL_API_TYPES: Final = ("mcp-server", "openapi")
MODEL_RESOURCE_TYPE: Final = "ai-model"
PLACEHOLDER_LIFECYCLE: Final = "unknown"
DEFAULT_PLACEHOLDER_OWNER: Final = "agentportal-unowned"
OBJECT_NAME_RULE: Final = (
    "must be 1-63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
)
_OBJECT_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_STRICT_DNS_LABEL = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_KIND_BY_API_TYPE: Final = {"mcp-server": "mcp_server", "openapi": "http_api"}


# --------------------------------------------------------------------------- value codecs


class Codec(Protocol):
    def decode(self, raw: str) -> Any: ...

    def encode(self, value: Any) -> str: ...


@dataclass(frozen=True)
class TextCodec:
    def decode(self, raw: str) -> str:
        return raw

    def encode(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value


@dataclass(frozen=True)
class ChoiceCodec:
    values: tuple[str, ...]

    def decode(self, raw: str) -> str:
        if raw not in self.values:
            raise ValueError(f"must be one of {', '.join(self.values)}; got {raw!r}")
        return raw

    def encode(self, value: Any) -> str:
        return self.decode(value)


@dataclass(frozen=True)
class LevelCodec:
    def decode(self, raw: str) -> int:
        if raw not in ("1", "2", "3", "4", "5"):
            raise ValueError(f"must be a whole number from 1 to 5; got {raw!r}")
        return int(raw)

    def encode(self, value: Any) -> str:
        if isinstance(value, bool) or value not in (1, 2, 3, 4, 5):
            raise ValueError(f"must be a whole number from 1 to 5; got {value!r}")
        return str(value)


def _is_plain_list_item(value: str) -> bool:
    return bool(value) and value == value.strip() and "," not in value and not value.startswith("[")


@dataclass(frozen=True)
class NameListCodec:
    """``a,b,c`` or a JSON array of strings."""

    def decode(self, raw: str) -> list[str]:
        if not raw.lstrip().startswith("["):
            return [part.strip() for part in raw.split(",") if part.strip()]
        items = parse_json_text(raw)
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("must be a comma-separated list or a JSON array of strings")
        return items

    def encode(self, value: Any) -> str:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("must be a list of strings")
        if all(_is_plain_list_item(item) for item in value):
            return ",".join(value)
        return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class JsonListCodec:
    """A JSON array whose items ``normalize`` checks and reshapes (raising ValueError)."""

    normalize: Callable[[Any, int], dict[str, Any]]

    def decode(self, raw: str) -> list[dict[str, Any]]:
        items = parse_json_text(raw)
        if not isinstance(items, list):
            raise ValueError("must be a JSON array")
        return [self.normalize(item, position) for position, item in enumerate(items)]

    def encode(self, value: Any) -> str:
        if not isinstance(value, list):
            raise ValueError("must be a list")
        return json.dumps(self.decode(json.dumps(value)), ensure_ascii=False, separators=(",", ":"))


def _optional_text(item: Mapping[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string")
    return value


def normalize_skill(item: Any, position: int) -> dict[str, Any]:
    where = f"skill {position}"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object")
    tags = item.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError(f"{where}: tags must be a list of strings")
    skill = {key: _optional_text(item, key, where) for key in ("id", "name", "description")}
    if not skill["id"] or not skill["name"]:
        raise ValueError(f"{where} needs an id and a name")
    return {**skill, "tags": list(tags)}


def normalize_package(item: Any, position: int) -> dict[str, Any]:
    where = f"package {position}"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object")
    keys = ("registry_type", "identifier", "version", "transport", "runtime_hint")
    package = {key: _optional_text(item, key, where) for key in keys}
    if package["transport"] is not None and package["transport"] not in TRANSPORTS:
        raise ValueError(f"{where}: transport must be one of {', '.join(TRANSPORTS)}")
    return package


@dataclass(frozen=True)
class Fact:
    """One Agent Portal fact carried in an ``agentportal.io/`` annotation (or label)."""

    data_key: str
    suffix: str
    codec: Codec
    label: bool = False
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{PREFIX}{self.suffix}")


_TEXT = TextCodec()
_NAMES = NameListCodec()
DATA_CLASS_FACT: Final = Fact("data_class", "data-class", ChoiceCodec(DATA_CLASSES), label=True)
VERSION_FACT: Final = Fact("version", "version", _TEXT)
AGENT_FACTS: Final = (
    Fact("agent_type", "agent-type", ChoiceCodec(AGENT_TYPES), label=True),
    Fact("autonomy_level", "autonomy-level", LevelCodec(), label=True),
    Fact("human_in_loop", "human-in-loop", ChoiceCodec(HUMAN_IN_LOOP), label=True),
    DATA_CLASS_FACT,
    Fact("runtime", "runtime", ChoiceCodec(RUNTIMES), label=True),
    Fact("models", "models", _NAMES),
    Fact("environments", "environments", _NAMES),
    Fact("a2a_endpoint", "a2a-endpoint", _TEXT),
    Fact("a2a_protocol_version", "a2a-protocol-version", _TEXT),
    Fact("provider_org", "provider-org", _TEXT),
    Fact("skills", "skills", JsonListCodec(normalize_skill)),
    VERSION_FACT,
)
TOOL_FACTS: Final = (
    Fact("kind", "tool-kind", ChoiceCodec(TOOL_KINDS), label=True),
    Fact("registry_name", "registry-name", _TEXT),
    VERSION_FACT,
    Fact("endpoint_url", "endpoint-url", _TEXT),
    Fact("transport", "transport", ChoiceCodec(TRANSPORTS), label=True),
    Fact("auth_scheme", "auth-scheme", ChoiceCodec(AUTH_SCHEMES), label=True),
    Fact("credential_scope", "credential-scope", ChoiceCodec(CREDENTIAL_SCOPES), label=True),
    Fact("reach", "reach", ChoiceCodec(REACH), label=True),
    DATA_CLASS_FACT,
    Fact("capabilities", "capabilities", JsonListCodec(normalize_capability)),
    Fact("secrets", "secrets", _NAMES),
    Fact("packages", "packages", JsonListCodec(normalize_package)),
)
MODEL_FACTS: Final = (
    Fact("provider", "model-provider", _TEXT),
    Fact("model_id", "model-id", _TEXT),
    Fact("hosting", "hosting", ChoiceCodec(HOSTINGS), label=True),
    Fact("residency", "residency", _TEXT),
    DATA_CLASS_FACT,
)
FACTS_BY_KIND: Final[Mapping[str, tuple[Fact, ...]]] = {
    "agent": AGENT_FACTS,
    "tool": TOOL_FACTS,
    "model": MODEL_FACTS,
    "team": (),
    "user": (),
}
SPECIAL_KEYS: Final = frozenset({PLACEHOLDERS_KEY, TAGS_KEY, REMOTE_HEADERS_KEY})
_KNOWN_KEYS: Final = {
    kind: frozenset(fact.key for fact in facts) | SPECIAL_KEYS for kind, facts in FACTS_BY_KIND.items()
}


# --------------------------------------------------------------------------- Backstage rules


def is_object_name(value: object) -> bool:
    """Backstage's default entity-name rule (also used for label values and key names)."""
    return isinstance(value, str) and len(value) <= 63 and _OBJECT_NAME.match(value) is not None


def _is_strict_dns_label(value: str) -> bool:
    return len(value) <= 63 and _STRICT_DNS_LABEL.match(value) is not None


def is_label_value(value: str) -> bool:
    return value == "" or is_object_name(value)


def is_prefixed_key(value: str) -> bool:
    """Backstage's rule for label and annotation keys: ``[dns.subdomain/]name``."""
    parts = value.split("/")
    if len(parts) == 1:
        return is_object_name(parts[0])
    if len(parts) != 2:
        return False
    prefix, name = parts
    subdomain_ok = 0 < len(prefix) <= 253 and all(_is_strict_dns_label(p) for p in prefix.split("."))
    return subdomain_ok and is_object_name(name)


def is_backstage_tag(value: str) -> bool:
    """Tags that every Backstage release accepts (older ones only allow DNS labels)."""
    return _is_strict_dns_label(value)


def is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return False
    if not _URL_SCHEME.match(parts.scheme or ""):
        return False
    return bool(parts.netloc) or parts.scheme not in ("http", "https")


# --------------------------------------------------------------------------- parsing


def _annotation_path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


class _Doc:
    """Field access for one entity document, collecting its errors and warnings."""

    def __init__(self, source: str, index: int) -> None:
        self.source = source
        self.index = index
        self.errors: list[FormatError] = []
        self.warnings: list[str] = []

    def error(self, field: str, message: str) -> None:
        self.errors.append(FormatError(self.source, self.index, field, message))

    def text(self, mapping: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        value = mapping.get(key)
        if value is None:
            if required:
                self.error(path, "is required")
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.error(path, "must be a non-empty string" if required else "must be a string")
            return None
        return value

    def mapping(self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> Mapping[str, Any]:
        value = parent.get(key)
        if value is None:
            if required:
                self.error(path, "is required")
            return {}
        if not isinstance(value, Mapping):
            self.error(path, "must be a mapping")
            return {}
        return value

    def strings(self, mapping: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[str] | None:
        value = mapping.get(key)
        if value is None:
            if required:
                self.error(path, "is required (it may be an empty list)")
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.error(path, "must be a list of non-empty strings")
            return None
        return value

    def string_map(self, metadata: Mapping[str, Any], key: str) -> dict[str, str]:
        value = self.mapping(metadata, key, f"metadata.{key}")
        result = {}
        for name, item in value.items():
            if isinstance(name, str) and isinstance(item, str):
                result[name] = item
            else:
                self.error(f'metadata.{key}["{name}"]', "keys and values must be strings")
        return result


def parse_entity_ref(ref: str, default_kind: str) -> tuple[str, str]:
    """``[kind:][namespace/]name`` -> (lowercase kind, name); the namespace is dropped."""
    kind, colon, rest = ref.partition(":")
    if not colon:
        kind, rest = default_kind, ref
    return kind.strip().lower(), rest.rpartition("/")[2].strip()


def _ref_names(
    doc: _Doc, refs: list[str] | None, path: str, default_kind: str, wanted: tuple[str, ...]
) -> list[str] | None:
    if refs is None:
        return None
    names = []
    for position, ref in enumerate(refs):
        kind, name = parse_entity_ref(ref, default_kind)
        if kind in wanted and name:
            names.append(name)
        elif kind not in wanted:
            doc.warnings.append(f"{path}[{position}] {ref!r} is not a {'/'.join(wanted)}; ignored")
        else:
            doc.error(f"{path}[{position}]", "is not a valid entity reference")
    return names


@dataclass
class _Entity:
    """The parts of one Backstage entity that the kind readers need."""

    doc: _Doc
    kind: EntityKind
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    annotations: dict[str, str]
    labels: dict[str, str]
    placeholders: frozenset[str]

    def filled_in(self, spec_field: str) -> bool:
        return f"spec.{spec_field}" in self.placeholders


def _fact_raw(entity: _Entity, key: str) -> tuple[str | None, str]:
    in_annotations = entity.annotations.get(key)
    in_labels = entity.labels.get(key)
    if in_annotations is not None and in_labels is not None and in_annotations != in_labels:
        entity.doc.warnings.append(f"annotation and label {key} disagree; the annotation wins")
    if in_annotations is not None:
        return in_annotations, _annotation_path(key)
    return in_labels, f'metadata.labels["{key}"]'


def _read_facts(entity: _Entity, data: dict[str, Any]) -> None:
    annotations, labels = entity.annotations, entity.labels
    for fact in FACTS_BY_KIND[entity.kind]:
        if fact.key not in annotations and fact.key not in labels:
            continue
        raw, path = _fact_raw(entity, fact.key)
        try:
            data[fact.data_key] = fact.codec.decode(raw)  # type: ignore[arg-type]
        except ValueError as error:
            entity.doc.error(path, str(error))
    known = _KNOWN_KEYS[entity.kind]
    unknown = [key for key in {*annotations, *labels} if key.startswith(PREFIX) and key not in known]
    for key in sorted(unknown):
        entity.doc.warnings.append(f"{key} is not an Agent Portal key for a {entity.kind}; ignored")


def _read_links(doc: _Doc, metadata: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    links = metadata.get("links")
    if links is None:
        return None
    if not isinstance(links, list):
        doc.error("metadata.links", "must be a list")
        return None
    result = []
    for position, link in enumerate(links):
        path = f"metadata.links[{position}]"
        if not isinstance(link, Mapping):
            doc.error(path, "must be a mapping with a url")
            continue
        url = doc.text(link, "url", f"{path}.url", required=True)
        title = doc.text(link, "title", f"{path}.title")
        if url:
            result.append({"url": url, "title": title})
    return result


def _read_tags(entity: _Entity) -> list[str] | None:
    if TAGS_KEY in entity.annotations:
        try:
            return _NAMES.decode(entity.annotations[TAGS_KEY])
        except ValueError as error:
            entity.doc.error(_annotation_path(TAGS_KEY), str(error))
            return None
    return entity.doc.strings(entity.metadata, "tags", "metadata.tags")


def _read_descriptive(entity: _Entity, data: dict[str, Any]) -> None:
    """title, description, tags, links, repository_url and foreign annotations."""
    doc, metadata = entity.doc, entity.metadata
    for key in ("title", "description"):
        if (value := doc.text(metadata, key, f"metadata.{key}")) is not None:
            data[key] = value
    if (tags := _read_tags(entity)) is not None:
        data["tags"] = tags
    if (links := _read_links(doc, metadata)) is not None:
        data["links"] = links
    foreign = {key: value for key, value in entity.annotations.items() if not key.startswith(PREFIX)}
    location = foreign.get(SOURCE_LOCATION, "")
    if location.startswith("url:"):
        data["repository_url"] = location.removeprefix("url:")
        del foreign[SOURCE_LOCATION]
    if foreign:
        data["annotations"] = foreign


def _read_ownership(entity: _Entity, data: dict[str, Any]) -> None:
    doc, spec = entity.doc, entity.spec
    owner = doc.text(spec, "owner", "spec.owner", required=True)
    if owner and not entity.filled_in("owner"):
        kind, name = parse_entity_ref(owner, "group")
        if not name:
            doc.error("spec.owner", "is not a valid entity reference")
        elif kind == "user":
            doc.warnings.append(f"owner {owner!r} is a User, not a team")
        elif kind != "group":
            doc.error("spec.owner", f"must refer to a Group (or User); got {owner!r}")
        data["owner"] = name
    lifecycle = doc.text(spec, "lifecycle", "spec.lifecycle", required=True)
    if lifecycle and not entity.filled_in("lifecycle"):
        if lifecycle in LIFECYCLES:
            data["lifecycle"] = lifecycle
        else:
            doc.warnings.append(f"lifecycle {lifecycle!r} is not one of {', '.join(LIFECYCLES)}; left out")


def _read_agent(entity: _Entity, data: dict[str, Any]) -> None:
    doc, spec = entity.doc, entity.spec
    _read_descriptive(entity, data)
    _read_ownership(entity, data)
    consumed = doc.strings(spec, "consumesApis", "spec.consumesApis")
    if (tools := _ref_names(doc, consumed, "spec.consumesApis", "api", ("api",))) is not None:
        data["tools"] = tools
    depends = doc.strings(spec, "dependsOn", "spec.dependsOn")
    if (calls := _ref_names(doc, depends, "spec.dependsOn", "component", ("component",))) is not None:
        data["calls"] = calls
    _read_facts(entity, data)


def _header_lists(value: Any, count: int) -> list[list[str]] | None:
    """``value`` when it is ``count`` lists of header names, else None."""
    if not isinstance(value, list) or len(value) != count:
        return None
    if not all(isinstance(names, list) and all(isinstance(n, str) for n in names) for names in value):
        return None
    return value


def _read_remote_headers(entity: _Entity, count: int) -> list[list[str]]:
    raw = entity.annotations.get(REMOTE_HEADERS_KEY)
    if raw is None:
        return [[] for _ in range(count)]
    problem = f"must be a JSON array of {count} lists of header names, one per spec.remotes entry"
    try:
        headers = _header_lists(parse_json_text(raw), count)
    except ValueError as error:
        headers, problem = None, str(error)
    if headers is None:
        entity.doc.error(_annotation_path(REMOTE_HEADERS_KEY), problem)
        return [[] for _ in range(count)]
    return headers


def _read_remotes(entity: _Entity) -> list[dict[str, Any]] | None:
    doc, remotes = entity.doc, entity.spec.get("remotes")
    if remotes is None or entity.filled_in("remotes"):
        return None
    if not isinstance(remotes, list) or not all(isinstance(remote, Mapping) for remote in remotes):
        doc.error("spec.remotes", "must be a list of {type, url} mappings")
        return None
    headers = _read_remote_headers(entity, len(remotes))
    result = []
    for position, remote in enumerate(remotes):
        kind = doc.text(remote, "type", f"spec.remotes[{position}].type", required=True)
        url = doc.text(remote, "url", f"spec.remotes[{position}].url", required=True)
        result.append({"type": kind, "url": url, "headers": headers[position]})
    return result


def _read_definition(entity: _Entity, api_type: str, data: dict[str, Any]) -> None:
    definition = entity.spec.get("definition")
    if api_type != "openapi" or entity.filled_in("definition"):
        return
    if isinstance(definition, str) and definition.strip():
        data["definition"] = definition
    elif isinstance(definition, Mapping) and {"$text", "$json", "$yaml"} & set(definition):
        entity.doc.warnings.append("spec.definition is a $text/$json/$yaml substitution; it is not fetched")
    else:
        entity.doc.error("spec.definition", "is required for an openapi API (the OpenAPI document as text)")


def _read_tool(entity: _Entity, data: dict[str, Any]) -> None:
    api_type = str(entity.spec.get("type"))
    _read_descriptive(entity, data)
    _read_ownership(entity, data)
    _read_definition(entity, api_type, data)
    if (remotes := _read_remotes(entity)) is not None:
        data["remotes"] = remotes
    _read_facts(entity, data)
    if "kind" not in data and not entity.filled_in("type"):
        data["kind"] = _KIND_BY_API_TYPE[api_type]
    if remotes:
        data.setdefault("endpoint_url", remotes[0]["url"])
        transport = TRANSPORT_BY_MCP_TYPE.get(remotes[0]["type"] or "")
        if transport is not None:
            data.setdefault("transport", transport)


def _read_team(entity: _Entity, data: dict[str, Any]) -> None:
    doc, spec, metadata = entity.doc, entity.spec, entity.metadata
    doc.text(spec, "type", "spec.type", required=True)
    doc.strings(spec, "children", "spec.children", required=True)
    profile = doc.mapping(spec, "profile", "spec.profile")
    title = doc.text(profile, "displayName", "spec.profile.displayName") or doc.text(
        metadata, "title", "metadata.title"
    )
    if title is not None:
        data["title"] = title
    if (description := doc.text(metadata, "description", "metadata.description")) is not None:
        data["description"] = description
    if (email := doc.text(profile, "email", "spec.profile.email")) is not None:
        data["email"] = email
    if (parent := doc.text(spec, "parent", "spec.parent")) is not None:
        data["parent"] = parse_entity_ref(parent, "group")[1]
        if not data["parent"]:
            doc.error("spec.parent", "is not a valid entity reference")
    members = doc.strings(spec, "members", "spec.members")
    if (names := _ref_names(doc, members, "spec.members", "user", ("user",))) is not None:
        data["members"] = names


def _read_user(entity: _Entity, data: dict[str, Any]) -> None:
    doc, spec = entity.doc, entity.spec
    profile = doc.mapping(spec, "profile", "spec.profile")
    if (email := doc.text(profile, "email", "spec.profile.email")) is not None:
        data["email"] = email
    if (display_name := doc.text(profile, "displayName", "spec.profile.displayName")) is not None:
        data["display_name"] = display_name
    member_of = doc.strings(spec, "memberOf", "spec.memberOf", required=True)
    teams = _ref_names(doc, member_of, "spec.memberOf", "group", ("group",))
    if teams is not None and not entity.filled_in("memberOf"):
        data["teams"] = teams


def _read_model(entity: _Entity, data: dict[str, Any]) -> None:
    entity.doc.text(entity.spec, "owner", "spec.owner", required=True)
    if (title := entity.doc.text(entity.metadata, "title", "metadata.title")) is not None:
        data["title"] = title
    _read_facts(entity, data)


_READERS: Final[Mapping[str, Callable[[_Entity, dict[str, Any]], None]]] = {
    "agent": _read_agent,
    "tool": _read_tool,
    "team": _read_team,
    "user": _read_user,
    "model": _read_model,
}
_TYPED_KINDS: Final = ("component", "api", "resource")


def _catalog_kind(kind: str, spec_type: str | None) -> EntityKind | None:
    if kind == "component":
        return "agent" if spec_type in AGENT_COMPONENT_TYPES else None
    if kind == "api":
        return "tool" if spec_type in TOOL_API_TYPES else None
    if kind == "resource":
        return "model" if spec_type == MODEL_RESOURCE_TYPE else None
    return {"group": "team", "user": "user"}.get(kind)  # type: ignore[return-value]


def _skip_reason(kind: str, spec_type: str | None) -> str:
    if kind.lower() in _TYPED_KINDS:
        return (
            f"{kind} of type {spec_type!r} is not catalogued (Agent Portal reads Component "
            "ai-agent/agent, API mcp-server/openapi, Resource ai-model, Group and User)"
        )
    return f"kind {kind!r} is not catalogued by Agent Portal"


def _check_name(doc: _Doc, kind: EntityKind, name: str) -> None:
    if kind in ("agent", "tool", "team"):
        if not is_dns_label(name):
            doc.error("metadata.name", DNS_LABEL_RULE)
    elif not is_object_name(name):
        doc.error("metadata.name", OBJECT_NAME_RULE)


def _placeholders(doc: _Doc, annotations: Mapping[str, str]) -> frozenset[str]:
    raw = annotations.get(PLACEHOLDERS_KEY)
    if raw is None:
        return frozenset()
    try:
        return frozenset(_NAMES.decode(raw))
    except ValueError as error:
        doc.error(_annotation_path(PLACEHOLDERS_KEY), str(error))
        return frozenset()


def parse_backstage_entity(value: Any, *, source: str, index: int) -> ParsedEntity | Skipped | list[FormatError]:
    """Read one Backstage entity document: an entity, a skip, or this document's errors."""
    doc = _Doc(source, index)
    if not isinstance(value, Mapping):
        doc.error("", f"a catalog entity must be a mapping, not a {type(value).__name__}")
        return doc.errors
    api_version = doc.text(value, "apiVersion", "apiVersion", required=True)
    kind = doc.text(value, "kind", "kind", required=True)
    if doc.errors or api_version is None or kind is None:
        return doc.errors
    if not api_version.startswith("backstage.io/"):
        return Skipped(source, index, kind, f"apiVersion {api_version!r} is not a Backstage catalog entity")
    spec = doc.mapping(value, "spec", "spec")
    spec_type = doc.text(spec, "type", "spec.type", required=kind.lower() in _TYPED_KINDS)
    if doc.errors:
        return doc.errors
    catalog_kind = _catalog_kind(kind.lower(), spec_type)
    if catalog_kind is None:
        return Skipped(source, index, kind, _skip_reason(kind, spec_type))
    metadata = doc.mapping(value, "metadata", "metadata", required=True)
    name = doc.text(metadata, "name", "metadata.name", required=True)
    if name is not None:
        _check_name(doc, catalog_kind, name)
    annotations = doc.string_map(metadata, "annotations")
    labels = doc.string_map(metadata, "labels")
    entity = _Entity(doc, catalog_kind, metadata, spec, annotations, labels, _placeholders(doc, annotations))
    data: dict[str, Any] = {"username" if catalog_kind == "user" else "name": name}
    _READERS[catalog_kind](entity, data)
    if doc.errors or name is None:
        return doc.errors
    return ParsedEntity(catalog_kind, name, data, source, index, doc.warnings)


def _duplicate_error(entity: ParsedEntity, first_index: int) -> FormatError:
    message = f"duplicate {entity.kind} name {entity.name!r} in documents {first_index} and {entity.index}"
    return FormatError(entity.source, entity.index, "metadata.name", message)


# What one loaded document gives: an entity, a skip, its errors, or None for an empty document.
DocumentOutcome = ParsedEntity | Skipped | list[FormatError] | None


def backstage_document_outcome(document: YamlDocument, *, source: str) -> DocumentOutcome:
    if document.error is not None:
        return [FormatError(source, document.index, "", document.error)]
    if document.data is None:
        return None
    return parse_backstage_entity(document.data, source=source, index=document.index)


def parse_backstage_documents(documents: Iterable[YamlDocument], *, source: str) -> ParseResult:
    """Parse loaded documents; a duplicate name is an error that names both document indices."""
    return collect_backstage_outcomes(backstage_document_outcome(d, source=source) for d in documents)


def collect_backstage_outcomes(outcomes: Iterable[DocumentOutcome]) -> ParseResult:
    """The documents' outcomes in document order, as one result; a name seen twice fails the second."""
    result = ParseResult(FORMAT)
    first_index: dict[tuple[str, str], int] = {}
    for outcome in outcomes:
        if outcome is None:
            continue
        if isinstance(outcome, list):
            result.errors.extend(outcome)
        elif isinstance(outcome, Skipped):
            result.skipped.append(outcome)
        elif (key := (outcome.kind, outcome.name.lower())) in first_index:
            result.errors.append(_duplicate_error(outcome, first_index[key]))
        else:
            first_index[key] = outcome.index
            result.entities.append(outcome)
    return result


def parse_backstage_yaml(
    content: bytes | str,
    *,
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_documents: int = DEFAULT_MAX_DOCUMENTS,
) -> ParseResult:
    """Parse a (multi-document) catalog-info.yaml; never raises for bad input."""
    try:
        documents = load_yaml_documents(content, max_bytes=max_bytes, max_depth=max_depth, max_documents=max_documents)
    except InputRejected as error:
        return ParseResult(FORMAT, errors=[FormatError(source, None, "", str(error))])
    return parse_backstage_documents(documents, source=source)


# --------------------------------------------------------------------------- export


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
