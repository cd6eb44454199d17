"""Catalog names: DNS-label checks, slugs, and the MCP registry name mapping.

Catalog names of agents, tools and teams are RFC 1123 DNS labels: 1 to 63 characters of
``a-z``, ``0-9`` and ``-``, starting and ending with a letter or digit. Such a name is also a
valid Backstage entity name, so it survives export unchanged.

Registry name rule (``registry_name_to_catalog_name``)
------------------------------------------------------
An MCP registry name has the form ``<namespace>/<server>``, e.g. ``io.github.alice/weather``.
Its catalog name is::

    <slug(server)>-<slug(last dot-separated part of namespace)>-<first 6 hex of sha256(registry name)>

for example ``io.github.alice/weather`` -> ``weather-alice-<6 hex>``. The slug part is trimmed so
that the whole name fits in 63 characters. The hash is taken over the exact registry name, so
two registry names that differ in any character (``alice`` vs ``bob``, or in case, or in an
earlier namespace part) get different names even when their slugs are equal. The result
depends on the input only, never on database state. A name without ``/`` (pre-2025 registry
entries) has no namespace part: ``<slug(name)>-<6 hex>``.

The optional ``taken`` predicate is a last resort for the astronomically unlikely hash
collision: when ``taken(candidate)`` says a *different* registry name already holds the
candidate, the hash suffix is lengthened (8, 10, ... 64 hex digits) until a free name is found.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from typing import Final

MAX_LABEL_LENGTH: Final = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_NOT_SLUG_CHARS = re.compile(r"[^a-z0-9]+")
_REGISTRY_HASH_LENGTH: Final = 6
_SLUG_HASH_LENGTH: Final = 8


def is_dns_label(value: object) -> bool:
    """True for an RFC 1123 label: lowercase letters, digits and '-', 1-63 characters."""
    return isinstance(value, str) and _DNS_LABEL.match(value) is not None


def _sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _plain_slug(value: str) -> str:
    """Lowercase ASCII with runs of anything else collapsed to one '-'; may be empty."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG_CHARS.sub("-", folded.lower()).strip("-")


def _trim(slug: str, length: int) -> str:
    return slug[:length].rstrip("-")


def slugify_dns_label(value: str, *, max_length: int = MAX_LABEL_LENGTH) -> str:
    """Turn free text (e.g. an A2A agent's display name) into a DNS label, deterministically.

    Accents are folded to ASCII, everything else becomes '-'. When the text has to be cut, or
    nothing usable is left, an 8-hex sha256 suffix of the original text keeps distinct inputs
    apart: ``"Ünïcode Agent"`` -> ``"unicode-agent"``, ``"日本語"`` -> ``"x-<8 hex>"``.
    """
    slug = _plain_slug(value)
    digest = _sha256_hex(value)[:_SLUG_HASH_LENGTH]
    if not slug:
        return f"x-{digest}"
    if len(slug) <= max_length:
        return slug
    return f"{_trim(slug, max_length - _SLUG_HASH_LENGTH - 1)}-{digest}"


def _namespace_hint(namespace: str) -> str:
    """The most specific part of a reverse-DNS namespace: ``io.github.alice`` -> ``alice``."""
    parts = [part for part in namespace.split(".") if part]
    return _plain_slug(parts[-1]) if parts else ""


def _registry_candidate(server_slug: str, hint: str, digest: str) -> str:
    body_budget = MAX_LABEL_LENGTH - len(digest) - 1
    if hint:
        # Keep at least part of the namespace hint visible when the server part is long.
        hint = _trim(hint, max(8, body_budget - len(server_slug) - 1))
        server_slug = _trim(server_slug, body_budget - len(hint) - 1)
    body = "-".join(part for part in (server_slug, hint) if part)
    return f"{_trim(body, body_budget)}-{digest}" if body else f"x-{digest}"


def registry_name_to_catalog_name(registry_name: str, taken: Callable[[str], bool] | None = None) -> str:
    """Map an MCP registry name to a catalog tool name; see the module docstring for the rule."""
    namespace, _, server = registry_name.rpartition("/")
    server_slug = _plain_slug(server)
    hint = _namespace_hint(namespace)
    full_digest = _sha256_hex(registry_name)
    for length in range(_REGISTRY_HASH_LENGTH, len(full_digest) + 1, 2):
        candidate = _registry_candidate(server_slug, hint, full_digest[:length])
        if taken is None or not taken(candidate):
            return candidate
    raise ValueError(f"no free catalog name for registry name {registry_name!r}")
