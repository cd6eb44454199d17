"""Pick the parser for an uploaded descriptor by looking at its content, not its file name.

Rules, in order:

1. JSON (the text starts with ``{`` or ``[``):
   * an object (or list of objects) whose ``apiVersion`` starts with ``backstage.io/`` -> Backstage;
   * ``$schema`` mentioning ``server.schema.json``, or ``name`` plus any of ``packages``,
     ``remotes``, ``version_detail``, or a registry answer (``server``/``servers``) -> MCP server.json;
   * ``skills``, ``supportedInterfaces``, or ``url`` plus ``capabilities`` -> A2A agent card.
2. YAML: any document whose ``apiVersion`` starts with ``backstage.io/`` -> Backstage; a single
   mapping document is also tried against the MCP and A2A rules above.
3. Otherwise a ``FormatError`` saying which formats were expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from catalog.formats.a2a import parse_agent_card_document
from catalog.formats.backstage_parse import (
    backstage_document_outcome,
    collect_backstage_outcomes,
    parse_backstage_documents,
)
from catalog.formats.mcp_registry import parse_mcp_server_document
from catalog.formats.parallel import parse_slices_in_parallel
from catalog.formats.safe_yaml import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_DOCUMENTS,
    InputRejected,
    YamlDocument,
    check_document_count,
    decode_text,
    load_chunks,
    parse_json_text,
    split_chunks,
)
from catalog.formats.types import FormatError, ParseResult

UNKNOWN_FORMAT: Final = "unknown"
EXPECTED: Final = (
    "cannot tell the format: expected a Backstage catalog-info.yaml (apiVersion backstage.io/...), "
    "an MCP registry server.json (name with packages/remotes) "
    "or an A2A agent card (skills/supportedInterfaces)"
)


def _is_backstage(value: Any) -> bool:
    return isinstance(value, Mapping) and str(value.get("apiVersion", "")).startswith("backstage.io/")


def _is_mcp_server(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    if "server.schema.json" in str(value.get("$schema", "")):
        return True
    if isinstance(value.get("servers"), list) or isinstance(value.get("server"), Mapping):
        return True
    return "name" in value and any(key in value for key in ("packages", "remotes", "version_detail"))


def _is_agent_card(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    return "skills" in value or "supportedInterfaces" in value or ("url" in value and "capabilities" in value)


def _failure(source: str, message: str) -> ParseResult:
    return ParseResult(UNKNOWN_FORMAT, errors=[FormatError(source, None, "", message)])


def _parse_value(value: Any, source: str, max_documents: int) -> ParseResult | None:
    """Dispatch one loaded JSON value; None when it matches no known format."""
    if _is_backstage(value):
        return parse_backstage_documents([YamlDocument(0, 1, value)], source=source)
    if isinstance(value, list) and value and all(_is_backstage(item) for item in value):
        check_document_count(len(value), max_documents)
        documents = [YamlDocument(index, 1, item) for index, item in enumerate(value)]
        return parse_backstage_documents(documents, source=source)
    if _is_mcp_server(value):
        return parse_mcp_server_document(value, source=source, max_documents=max_documents)
    if _is_agent_card(value):
        return parse_agent_card_document(value, source=source)
    return None


def parse_yaml_slice(chunks: list[tuple[int, str]], first_index: int, source: str, max_depth: int) -> list[Any]:
    """Load consecutive chunks of a stream: a Backstage document becomes its outcome, any other stays a
    YamlDocument (whether the stream is Backstage is decided over all of them). Runs in worker processes too."""
    return [
        backstage_document_outcome(document, source=source) if _is_backstage(document.data) else document
        for document in load_chunks(chunks, max_depth, first_index)
    ]


def _parse_yaml(text: str, source: str, max_depth: int, max_documents: int) -> ParseResult:
    chunks = split_chunks(text, max_documents)
    items = parse_slices_in_parallel(parse_yaml_slice, chunks, source=source, max_depth=max_depth)
    if not all(isinstance(item, YamlDocument) for item in items):
        return collect_backstage_outcomes(
            backstage_document_outcome(item, source=source) if isinstance(item, YamlDocument) else item
            for item in items
        )
    documents: list[YamlDocument] = items
    loaded = [document for document in documents if document.data is not None or document.error]
    if len(loaded) == 1 and loaded[0].error is None:
        result = _parse_value(loaded[0].data, source, max_documents)
        if result is not None:
            return result
    errors = [FormatError(source, document.index, "", document.error) for document in loaded if document.error]
    return ParseResult(UNKNOWN_FORMAT, errors=errors or [FormatError(source, None, "", EXPECTED)])


def parse_document_bytes(
    content: bytes,
    *,
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_documents: int = DEFAULT_MAX_DOCUMENTS,
) -> ParseResult:
    """Detect the descriptor format and parse it; bad input is reported, never raised."""
    try:
        text = decode_text(content, max_bytes=max_bytes)
        result = _parse_text(text, source, max_depth, max_documents)
    except InputRejected as error:
        return _failure(source, str(error))
    if "\\" not in text:
        # NUL bytes are refused, so only an escape (YAML's \0, \x00, \u0000; JSON's \u0000) could put a NUL in a
        # string: without a backslash in the text, the importer need not look for one in every value.
        for entity in result.entities:
            entity.nul_free = True
    return result


def _parse_text(text: str, source: str, max_depth: int, max_documents: int) -> ParseResult:
    if text.lstrip().startswith(("{", "[")):
        try:
            value = parse_json_text(text, max_depth=max_depth)
        except ValueError as error:
            # Not JSON after all? YAML flow style is still possible; else report the JSON problem.
            result = _parse_yaml(text, source, max_depth, max_documents)
            return result if result.format != UNKNOWN_FORMAT else _failure(source, str(error))
        return _parse_value(value, source, max_documents) or _failure(source, EXPECTED)
    return _parse_yaml(text, source, max_depth, max_documents)
