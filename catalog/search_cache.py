"""Catalog facet counts are shared for a minute between visitors and pages; every catalog write drops them.

A search's counts and total depend on the catalog and on the search words, filters and tag, never on the sort or
the page, so paging, re-sorting and htmx swaps of the same search reuse them instead of counting 50,000 matches
again. Keys carry a generation that every catalog write replaces, at once and again on commit, so no count from
before a write is served after it in this process. With a per-process cache (locmem) another process may serve
counts up to TTL_SECONDS old; with a shared cache (CACHE_URL) none does.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.core.cache import cache
from django.db import transaction

GENERATION_KEY = "catalog:counts:generation"
TTL_SECONDS = 60


def counts_key(search: Any) -> str:
    """The cache key of the counts for `search` (JSON-able: words, filters, tag) in the catalog as it is now."""
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, uuid.uuid4().hex, None)
        generation = cache.get(GENERATION_KEY)
    digest = hashlib.sha256(json.dumps(search, sort_keys=True).encode()).hexdigest()[:32]
    return f"catalog:counts:{generation}:{digest}"


def invalidate_catalog_counts() -> None:
    transaction.on_commit(_new_generation)
    _new_generation()


def _new_generation() -> None:
    cache.set(GENERATION_KEY, uuid.uuid4().hex, None)
