"""Pure (Django-free) parsers and exporter for Agent Portal's descriptor formats.

Entry points: ``parse_document_bytes`` (auto-detect), ``parse_backstage_yaml``,
``parse_mcp_server_json``, ``parse_agent_card_json``, ``discover_agent_card`` and
``export_backstage``. Every parser returns a ``ParseResult`` and reports bad input as
``FormatError`` values instead of raising.
"""

from catalog.formats.a2a import (
    agent_card_urls,
    discover_agent_card,
    parse_agent_card,
    parse_agent_card_document,
    parse_agent_card_json,
)
from catalog.formats.backstage_export import ExportError, export_backstage
from catalog.formats.backstage_parse import parse_backstage_documents, parse_backstage_entity, parse_backstage_yaml
from catalog.formats.detect import parse_document_bytes
from catalog.formats.mcp_registry import parse_mcp_server, parse_mcp_server_document, parse_mcp_server_json
from catalog.formats.naming import is_dns_label, registry_name_to_catalog_name, slugify_dns_label
from catalog.formats.safe_yaml import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_DOCUMENTS,
    InputRejected,
    YamlDocument,
    load_json_document,
    load_yaml_documents,
)
from catalog.formats.types import FormatError, ParsedEntity, ParseResult, Skipped

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_DOCUMENTS",
    "ExportError",
    "FormatError",
    "InputRejected",
    "ParseResult",
    "ParsedEntity",
    "Skipped",
    "YamlDocument",
    "agent_card_urls",
    "discover_agent_card",
    "export_backstage",
    "is_dns_label",
    "load_json_document",
    "load_yaml_documents",
    "parse_agent_card",
    "parse_agent_card_document",
    "parse_agent_card_json",
    "parse_backstage_documents",
    "parse_backstage_entity",
    "parse_backstage_yaml",
    "parse_document_bytes",
    "parse_mcp_server",
    "parse_mcp_server_document",
    "parse_mcp_server_json",
    "registry_name_to_catalog_name",
    "slugify_dns_label",
]
