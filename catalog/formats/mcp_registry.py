"""MCP registry ``server.json`` -> one ``tool`` entity of kind ``mcp_server``.

Both shapes are read:

* current camelCase (schema 2025-09-16 onwards, e.g. 2025-12-11): ``version``, ``title``,
  ``websiteUrl``, ``packages[].registryType/identifier/version/runtimeHint/transport.type``,
  ``environmentVariables[].isSecret``, ``remotes[].type/url/headers``;
* older snake_case: 2025-07-09 (``registry_type``, ``identifier``, ``environment_variables``,
  ``is_secret``, ``runtime_hint``, ``website_url``) and the pre-release form
  (``version_detail.version``, ``packages[].registry_name`` + ``name``,
  ``remotes[].transport_type`` = ``streamable`` | ``sse``, ``status``).

A registry API answer is unwrapped too: ``{"server": {...}, "_meta": {...}}`` and
``{"servers": [...]}`` (each server is one document index).

Mapping into ``ParsedEntity.data`` (keys the file does not give are left out; there is no owner):

==================  ====================================================================
data key            server.json
==================  ====================================================================
name                ``registry_name_to_catalog_name(name)`` (see naming.py)
registry_name       ``name``
title/description   ``title`` / ``description``
version             ``version`` or ``version_detail.version``
kind                always ``mcp_server``
lifecycle           ``deprecated`` when ``status`` (or the registry's official _meta
                    status) is ``deprecated``; other statuses say nothing about lifecycle
transport           first remote's type, else first package's transport type
endpoint_url        first remote's URL
auth_scheme         ``bearer``/``basic`` from an ``Authorization`` remote header template,
                    ``api_key`` from a secret ``*api-key*`` header; otherwise left out
secrets             NAMES of secret env vars, headers, arguments and URL variables
packages            ``[{registry_type, identifier, version, transport, runtime_hint}]``
remotes             ``[{type, url, headers: [header names]}]`` (type in MCP vocabulary)
capabilities        ``_meta["io.modelcontextprotocol.registry/publisher-provided"].tools``:
                    MCP ``Tool`` objects whose ``annotations`` carry the ToolAnnotations
                    hints (readOnlyHint, destructiveHint, idempotentHint, openWorldHint)
data_class          ``_meta[...publisher-provided]["agentportal.io/data-class"]``
repository_url      ``repository.url``
links               ``websiteUrl`` as ``{"url": ..., "title": "Website"}``
==================  ====================================================================

Secret values are never read into the result: only ``name`` (or ``valueHint``) of an input
marked secret is kept; ``value``, ``default`` and ``placeholder`` are ignored for every input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from catalog.formats.naming import registry_name_to_catalog_name
from catalog.formats.safe_yaml import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DOCUMENTS,
    InputRejected,
    load_json_document,
)
from catalog.formats.types import DATA_CLASSES, FormatError, ParsedEntity, ParseResult

FORMAT: Final = "mcp_registry"
CURRENT_SCHEMA_URL: Final = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
PUBLISHER_META_KEY: Final = "io.modelcontextprotocol.registry/publisher-provided"
DATA_CLASS_META_KEY: Final = "agentportal.io/data-class"
OFFICIAL_META_KEY: Final = "io.modelcontextprotocol.registry/official"
_REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")
_API_KEY_HEADER = re.compile(r"api[-_]?key", re.IGNORECASE)

# MCP transport/remote type -> our transport enum.
TRANSPORT_BY_MCP_TYPE: Final = {
    "stdio": "stdio",
    "streamable-http": "streamable_http",
    "streamable": "streamable_http",
    "sse": "sse",
    "http": "http",
}
# Our transport enum -> MCP type, for export.
MCP_TYPE_BY_TRANSPORT: Final = {
    "stdio": "stdio",
    "streamable_http": "streamable-http",
    "sse": "sse",
    "http": "http",
}
_HINTS: Final = (
    ("read_only", "readOnlyHint"),
    ("destructive", "destructiveHint"),
    ("idempotent", "idempotentHint"),
    ("open_world", "openWorldHint"),
)


def pick(mapping: Mapping[str, Any], *names: str) -> Any:
    """The value of the first of ``names`` present in ``mapping`` (camelCase/snake_case synonyms)."""
    for name in names:
        if name in mapping:
            return mapping[name]
    return None


def normalize_remote_type(value: str) -> str:
    """Legacy ``streamable`` is today's ``streamable-http``; other types pass through."""
    return "streamable-http" if value == "streamable" else value


def _optional_bool(value: Any, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{where} must be true, false or absent")


def _optional_str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{where} must be a string")


def normalize_capability(item: Any, position: int) -> dict[str, Any]:
    """One capability from our shape or from an MCP ``Tool`` object; raises ValueError."""
    where = f"capability {position}"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where} needs a name")
    hints = item.get("annotations")
    if hints is not None and not isinstance(hints, Mapping):
        raise ValueError(f"{where}: annotations must be an object")
    capability: dict[str, Any] = {
        "name": name,
        "description": _optional_str(item.get("description"), f"{where} description"),
    }
    for our_key, mcp_key in _HINTS:
        raw = hints.get(mcp_key) if hints is not None else item.get(our_key)
        capability[our_key] = _optional_bool(raw, f"{where} {our_key}")
    return capability


def capability_to_mcp_tool(capability: Mapping[str, Any]) -> dict[str, Any]:
    """Our capability shape as an MCP ``Tool``-like object (hints that are None are left out)."""
    tool: dict[str, Any] = {"name": capability["name"]}
    if capability.get("description") is not None:
        tool["description"] = capability["description"]
    hints = {mcp_key: capability[key] for key, mcp_key in _HINTS if capability.get(key) is not None}
    if hints:
        tool["annotations"] = hints
    return tool


class _Problems:
    """Collects field errors for one document."""

    def __init__(self, source: str, index: int) -> None:
        self.source = source
        self.index = index
        self.errors: list[FormatError] = []
        self.warnings: list[str] = []

    def error(self, field: str, message: str) -> None:
        self.errors.append(FormatError(self.source, self.index, field, message))


def _list_of_objects(problems: _Problems, value: Any, field: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        problems.error(field, "must be a list of objects")
        return []
    return value


def _text(problems: _Problems, value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    problems.error(field, "must be a string")
    return None


def _is_secret(item: Mapping[str, Any]) -> bool:
    return pick(item, "isSecret", "is_secret") is True


def _secret_input_names(problems: _Problems, inputs: Any, field: str) -> list[str]:
    """Names of inputs marked secret; a positional argument is named by its value hint."""
    names = []
    for position, item in enumerate(_list_of_objects(problems, inputs, field)):
        if _is_secret(item):
            name = pick(item, "name", "valueHint", "value_hint")
            if isinstance(name, str) and name:
                names.append(name)
            else:
                problems.error(f"{field}[{position}]", "a secret input needs a name or valueHint")
        # An input's value template may pull in secret variables of its own.
        names += _secret_variable_names(problems, item.get("variables"), f"{field}[{position}].variables")
    return names


def _secret_variable_names(problems: _Problems, variables: Any, field: str) -> list[str]:
    if variables is None:
        return []
    if not isinstance(variables, Mapping):
        problems.error(field, "must be an object")
        return []
    return [name for name, spec in variables.items() if isinstance(spec, Mapping) and _is_secret(spec)]


def _transport_of(problems: _Problems, raw: Any, field: str) -> str | None:
    """Map an MCP transport (``{"type": ...}`` or a bare string) to our transport enum."""
    kind = raw.get("type") if isinstance(raw, Mapping) else raw
    if kind is None:
        return None
    if not isinstance(kind, str) or kind not in TRANSPORT_BY_MCP_TYPE:
        problems.error(field, f"unknown transport {kind!r}; expected one of stdio, streamable-http, sse")
        return None
    return TRANSPORT_BY_MCP_TYPE[kind]


def _read_package(problems: _Problems, package: Mapping[str, Any], field: str) -> tuple[dict[str, Any], list[str]]:
    legacy = "identifier" not in package and "registry_name" in package
    identifier = package.get("name") if legacy else package.get("identifier")
    registry_type = package.get("registry_name") if legacy else pick(package, "registryType", "registry_type")
    entry = {
        "registry_type": _text(problems, registry_type, f"{field}.registryType"),
        "identifier": _text(problems, identifier, f"{field}.identifier"),
        "version": _text(problems, package.get("version"), f"{field}.version"),
        "transport": _transport_of(problems, package.get("transport"), f"{field}.transport"),
        "runtime_hint": _text(problems, pick(package, "runtimeHint", "runtime_hint"), f"{field}.runtimeHint"),
    }
    secrets = _secret_input_names(
        problems,
        pick(package, "environmentVariables", "environment_variables"),
        f"{field}.environmentVariables",
    )
    for key, synonym in (
        ("runtimeArguments", "runtime_arguments"),
        ("packageArguments", "package_arguments"),
    ):
        secrets += _secret_input_names(problems, pick(package, key, synonym), f"{field}.{key}")
    return entry, secrets


def _auth_from_headers(headers: Iterable[Mapping[str, Any]]) -> str | None:
    """Infer the auth scheme from header templates; the template text itself is never kept."""
    for header in headers:
        name = str(header.get("name", ""))
        template = header.get("value")
        if name.lower() == "authorization" and isinstance(template, str):
            scheme = template.strip().split(" ", 1)[0].lower()
            if scheme in ("bearer", "basic"):
                return scheme
        if _API_KEY_HEADER.search(name) and _is_secret(header):
            return "api_key"
    return None


def _read_remote(
    problems: _Problems, remote: Mapping[str, Any], field: str
) -> tuple[dict[str, Any], list[str], str | None]:
    kind = _text(problems, pick(remote, "type", "transport_type"), f"{field}.type")
    url = _text(problems, remote.get("url"), f"{field}.url")
    if not kind or not url:
        problems.error(field, "a remote needs a type and a url")
    headers = _list_of_objects(problems, remote.get("headers"), f"{field}.headers")
    header_names = [str(header["name"]) for header in headers if isinstance(header.get("name"), str)]
    secrets = _secret_input_names(problems, headers, f"{field}.headers")
    secrets += _secret_variable_names(problems, remote.get("variables"), f"{field}.variables")
    entry = {"type": normalize_remote_type(kind) if kind else kind, "url": url, "headers": header_names}
    return entry, secrets, _auth_from_headers(headers)


def _read_capabilities(problems: _Problems, meta: Any) -> list[dict[str, Any]] | None:
    publisher = meta.get(PUBLISHER_META_KEY) if isinstance(meta, Mapping) else None
    tools = publisher.get("tools") if isinstance(publisher, Mapping) else None
    if tools is None:
        return None
    if not isinstance(tools, list):
        problems.error(f"_meta.{PUBLISHER_META_KEY}.tools", "must be a list of MCP tools")
        return None
    try:
        return [normalize_capability(tool, position) for position, tool in enumerate(tools)]
    except ValueError as error:
        problems.error(f"_meta.{PUBLISHER_META_KEY}.tools", str(error))
        return None


def _read_data_class(problems: _Problems, meta: Any) -> str | None:
    publisher = meta.get(PUBLISHER_META_KEY) if isinstance(meta, Mapping) else None
    value = publisher.get(DATA_CLASS_META_KEY) if isinstance(publisher, Mapping) else None
    if value is None:
        return None
    if value not in DATA_CLASSES:
        problems.error(f"_meta.{PUBLISHER_META_KEY}.{DATA_CLASS_META_KEY}", f"must be one of {', '.join(DATA_CLASSES)}")
        return None
    return str(value)


def _is_deprecated(server: Mapping[str, Any], outer_meta: Any) -> bool:
    metas = [meta for meta in (server.get("_meta"), outer_meta) if isinstance(meta, Mapping)]
    official = [meta.get(OFFICIAL_META_KEY) for meta in metas]
    statuses = [server.get("status")] + [item.get("status") for item in official if isinstance(item, Mapping)]
    return "deprecated" in statuses


def _dedupe(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _read_registry_name(problems: _Problems, server: Mapping[str, Any]) -> str | None:
    registry_name = server.get("name")
    if not isinstance(registry_name, str) or not registry_name.strip():
        problems.error("name", "is required (a string like 'io.github.owner/server')")
        return None
    if not _REGISTRY_NAME.match(registry_name):
        problems.warnings.append(
            f"registry name {registry_name!r} is not of the form 'namespace/server' required since 2025-07-09"
        )
    return registry_name


def _read_links_and_version(problems: _Problems, server: Mapping[str, Any], data: dict[str, Any]) -> None:
    version = server.get("version")
    version_detail = server.get("version_detail")
    if version is None and isinstance(version_detail, Mapping):
        version = version_detail.get("version")
    if (version := _text(problems, version, "version")) is not None:
        data["version"] = version
    repository = server.get("repository")
    if isinstance(repository, Mapping) and isinstance(repository.get("url"), str):
        data["repository_url"] = repository["url"]
    website = _text(problems, pick(server, "websiteUrl", "website_url"), "websiteUrl")
    if website:
        data["links"] = [{"url": website, "title": "Website"}]


def _read_endpoints(problems: _Problems, server: Mapping[str, Any], data: dict[str, Any]) -> None:
    secrets: list[str] = []
    packages, remotes, auth_schemes = [], [], []
    for position, package in enumerate(_list_of_objects(problems, server.get("packages"), "packages")):
        entry, found = _read_package(problems, package, f"packages[{position}]")
        packages.append(entry)
        secrets += found
    for position, remote in enumerate(_list_of_objects(problems, server.get("remotes"), "remotes")):
        entry, found, auth = _read_remote(problems, remote, f"remotes[{position}]")
        remotes.append(entry)
        secrets += found
        auth_schemes.append(auth)
    if packages:
        data["packages"] = packages
    if remotes:
        data["remotes"] = remotes
        data["endpoint_url"] = remotes[0]["url"]
    transport = TRANSPORT_BY_MCP_TYPE.get(remotes[0]["type"] or "") if remotes else None
    if transport is None and packages:
        transport = packages[0]["transport"]
    if transport is not None:
        data["transport"] = transport
    if auth := next((scheme for scheme in auth_schemes if scheme), None):
        data["auth_scheme"] = auth
    if secrets:
        data["secrets"] = _dedupe(secrets)


def parse_mcp_server(
    server: Any, *, source: str, index: int = 0, outer_meta: Any = None
) -> ParsedEntity | list[FormatError]:
    """Read one server.json object; returns the entity or this document's errors."""
    problems = _Problems(source, index)
    if not isinstance(server, Mapping):
        problems.error("", "a server.json document must be a JSON object")
        return problems.errors
    registry_name = _read_registry_name(problems, server)
    data: dict[str, Any] = {"kind": "mcp_server"}
    for key in ("title", "description"):
        if (value := _text(problems, server.get(key), key)) is not None:
            data[key] = value
    _read_links_and_version(problems, server, data)
    _read_endpoints(problems, server, data)
    if _is_deprecated(server, outer_meta):
        data["lifecycle"] = "deprecated"
    capabilities = _read_capabilities(problems, server.get("_meta"))
    if capabilities is not None:
        data["capabilities"] = capabilities
    if (data_class := _read_data_class(problems, server.get("_meta"))) is not None:
        data["data_class"] = data_class
    if problems.errors or registry_name is None:
        return problems.errors
    name = registry_name_to_catalog_name(registry_name)
    data = {"name": name, "registry_name": registry_name, **data}
    return ParsedEntity("tool", name, data, source, index, problems.warnings)


def _server_documents(value: Any) -> list[tuple[Any, Any]]:
    """(server, outer _meta) pairs from a bare server.json or a registry API answer."""
    if isinstance(value, Mapping) and isinstance(value.get("servers"), list):
        return [_unwrap(item) for item in value["servers"]]
    return [_unwrap(value)]


def _unwrap(item: Any) -> tuple[Any, Any]:
    if isinstance(item, Mapping) and isinstance(item.get("server"), Mapping) and "name" not in item:
        return item["server"], item.get("_meta")
    return item, None


def parse_mcp_server_document(value: Any, *, source: str, max_documents: int = DEFAULT_MAX_DOCUMENTS) -> ParseResult:
    """Parse an already loaded server.json (or registry answer) into a ``ParseResult``."""
    servers = _server_documents(value)
    if len(servers) > max_documents:
        message = f"input has more than {max_documents} documents"
        return ParseResult(FORMAT, errors=[FormatError(source, None, "", message)])
    result = ParseResult(FORMAT)
    first_index: dict[str, int] = {}
    for index, (server, outer_meta) in enumerate(servers):
        outcome = parse_mcp_server(server, source=source, index=index, outer_meta=outer_meta)
        if isinstance(outcome, list):
            result.errors.extend(outcome)
            continue
        registry_name = outcome.data["registry_name"]
        if registry_name in first_index:
            message = f"duplicate server {registry_name!r} in documents {first_index[registry_name]} and {index}"
            result.errors.append(FormatError(source, index, "name", message))
            continue
        first_index[registry_name] = index
        result.entities.append(outcome)
    return result


def parse_mcp_server_json(content: bytes | str, *, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ParseResult:
    """Parse server.json bytes; bad input becomes a ``FormatError``, never an exception."""
    try:
        value = load_json_document(content, max_bytes=max_bytes)
    except (InputRejected, ValueError) as error:
        return ParseResult(FORMAT, errors=[FormatError(source, None, "", str(error))])
    return parse_mcp_server_document(value, source=source)
