"""Catalog facet counts are shared for a minute between visitors and pages; every catalog write drops them.

A search's counts and total depend on the catalog and on the search words, filters and tag, never on the sort or
the page, so paging, re-sorting and htmx swaps of the same search reuse them instead of counting 50,000 matches
again. Keys carry a generation that every catalog write replaces, at once and again on commit, so no count from
before a write is served after it in this process. With a per-process cache (locmem) another process may serve
counts up to TTL_SECONDS old; with a shared cache (CACHE_URL) none does.

The API's search answers (a page of `?q=` results) are shared the same way, but only for
CATALOG_SEARCH_RESULTS_SECONDS (10 s by default; 0 turns it off), between readers who see the same catalog: the
key holds the catalog's generation, the reader's visibility and the whole URL. Rendering a page of 50 full rows
was two thirds of an API search's CPU (bench.catalog, API search over gunicorn with 8 clients: p95 310 ms, 19 ms
CPU per search in process), so repeating a search (paging back, an agent asking again, a dashboard) costs a cache
read. The short lifetime bounds what a write that leaves the search index alone (a team renamed) can leave stale.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

GENERATION_KEY = "catalog:counts:generation"
TTL_SECONDS = 60
T = TypeVar("T")


def counts_key(search: Any) -> str:
    """The cache key of the counts for `search` (JSON-able: words, filters, tag) in the catalog as it is now."""
    return _key("counts", search)


def _key(what: str, search: Any) -> str:
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, uuid.uuid4().hex, None)
        generation = cache.get(GENERATION_KEY)
    digest = hashlib.sha256(json.dumps(search, sort_keys=True).encode()).hexdigest()[:32]
    return f"catalog:{what}:{generation}:{digest}"


def shared_results(search: Any, compute: Callable[[], T]) -> T:
    """The answer of one search, `search` (JSON-able: its URL and the reader's visibility), computed by `compute`
    at most once per CATALOG_SEARCH_RESULTS_SECONDS in the catalog as it is now; an error is never kept."""
    seconds = settings.CATALOG_SEARCH_RESULTS_SECONDS
    if seconds <= 0:
        return compute()
    key = _key("results", search)
    answer: T | None = cache.get(key)
    if answer is None:
        answer = compute()
        cache.set(key, answer, seconds)
    return answer


def invalidate_catalog_counts() -> None:
    transaction.on_commit(_new_generation)
    _new_generation()


def _new_generation() -> None:
    cache.set(GENERATION_KEY, uuid.uuid4().hex, None)
