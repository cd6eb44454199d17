"""The unfiltered catalog's facet counts are shared for a minute; every catalog write drops them."""

from django.core.cache import cache
from django.db import transaction

UNFILTERED_FACETS_KEY = "catalog:facets:unfiltered"
TTL_SECONDS = 60


def invalidate_catalog_counts() -> None:
    transaction.on_commit(lambda: cache.delete(UNFILTERED_FACETS_KEY))
    cache.delete(UNFILTERED_FACETS_KEY)
