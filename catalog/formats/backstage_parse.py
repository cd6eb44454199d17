"""Parsing Backstage catalog-info YAML into the portal's entities: one outcome per document (an entity, a skip
with its reason, or errors naming the field), then duplicates across documents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from catalog.formats.backstage import (
    _KIND_BY_API_TYPE,
    _KNOWN_KEYS,
    _NAMES,
    AGENT_COMPONENT_TYPES,
    FACTS_BY_KIND,
    FORMAT,
    MODEL_RESOURCE_TYPE,
    OBJECT_NAME_RULE,
    PLACEHOLDERS_KEY,
    PREFIX,
    REMOTE_HEADERS_KEY,
    SOURCE_LOCATION,
    TAGS_KEY,
    TOOL_API_TYPES,
    _annotation_path,
    _Doc,
    is_object_name,
)
from catalog.formats.mcp_registry import (
    TRANSPORT_BY_MCP_TYPE,
)
from catalog.formats.naming import is_dns_label
from catalog.formats.safe_yaml import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_DOCUMENTS,
    InputRejected,
    YamlDocument,
    load_yaml_documents,
    parse_json_text,
)
from catalog.formats.types import (
    DNS_LABEL_RULE,
    LIFECYCLES,
    EntityKind,
    FormatError,
    ParsedEntity,
    ParseResult,
    Skipped,
)


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
