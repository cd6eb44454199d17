"""Backstage ``catalog-info.yaml`` <-> Agent Portal entities: what parse (`backstage_parse`) and export
(`backstage_export`) share (keys, facts and their codecs, name rules). Parse and export are symmetric.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from catalog.formats.mcp_registry import (
    normalize_capability,
)
from catalog.formats.safe_yaml import (
    parse_json_text,
)
from catalog.formats.types import (
    AGENT_TYPES,
    AUTH_SCHEMES,
    CREDENTIAL_SCOPES,
    DATA_CLASSES,
    HOSTINGS,
    HUMAN_IN_LOOP,
    REACH,
    RUNTIMES,
    TOOL_KINDS,
    TRANSPORTS,
    FormatError,
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
