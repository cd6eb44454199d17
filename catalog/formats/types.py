"""Plain data produced by the descriptor parsers; the services layer writes it to the database.

The shapes here are a fixed contract (see the module docstrings of the parsers for which
descriptor field feeds which ``data`` key). Nothing in this package imports Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

EntityKind = Literal["agent", "tool", "team", "user", "model"]
ENTITY_KINDS: Final = ("agent", "tool", "team", "user", "model")

# Enumerations used in ``ParsedEntity.data``; parsers emit exactly these values.
LIFECYCLES: Final = ("experimental", "production", "deprecated")
AGENT_TYPES: Final = ("coding", "code_review", "sre", "business", "other")
AUTONOMY_LEVELS: Final = (1, 2, 3, 4, 5)
HUMAN_IN_LOOP: Final = ("per_action", "sampled", "none")
DATA_CLASSES: Final = ("public", "internal", "confidential", "restricted")
RUNTIMES: Final = ("kubernetes", "ci", "workstation", "saas", "serverless")
TOOL_KINDS: Final = ("mcp_server", "http_api", "cli", "saas")
TRANSPORTS: Final = ("stdio", "streamable_http", "sse", "http")
AUTH_SCHEMES: Final = ("none", "api_key", "bearer", "oauth2", "basic", "mtls")
CREDENTIAL_SCOPES: Final = ("none", "delegated", "shared", "admin")
REACH: Final = ("closed", "allowlisted", "open_world")
HOSTINGS: Final = ("saas", "self_hosted")

DNS_LABEL_RULE: Final = "must be a DNS label: lowercase letters, digits and '-', at most 63 characters"


@dataclass
class ParsedEntity:
    """One catalog entity read from a descriptor; ``data`` holds only keys the source gave."""

    kind: EntityKind
    name: str
    data: dict[str, Any]
    source: str
    index: int
    warnings: list[str] = field(default_factory=list)
    # True when no string in `data` can hold a NUL character (see parse_document_bytes); False when unknown.
    nul_free: bool = False


@dataclass
class Skipped:
    """A well-formed document that Agent Portal does not catalogue (e.g. a Backstage System)."""

    source: str
    index: int
    kind: str
    reason: str


@dataclass
class FormatError:
    """A problem that stops one document (or the whole input when ``index`` is None) from loading."""

    source: str
    index: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.index is None else f"{self.source} document {self.index}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class ParseResult:
    """Everything one input produced; a bad document adds an error and never hides the others."""

    format: str
    entities: list[ParsedEntity] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[FormatError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors
