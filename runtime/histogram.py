"""Latency histogram with fixed bucket bounds, so daily rows add up by plain increments and p50/p95 come out of
the sums. Pure: no ORM."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence

# Upper bounds in milliseconds; the last bucket is open-ended.
BOUNDS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
BUCKET_FIELDS: tuple[str, ...] = (*(f"le_{int(bound)}ms" for bound in BOUNDS_MS), "le_inf")


def bucket_field(duration_ms: float) -> str:
    return BUCKET_FIELDS[bisect_left(BOUNDS_MS, duration_ms)]


def percentile(counts: Sequence[int], fraction: float) -> float | None:
    """The `fraction` quantile (0..1) estimated by linear interpolation inside its bucket; None without data."""
    total = sum(counts)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = BOUNDS_MS[index - 1] if index > 0 else 0.0
            upper = BOUNDS_MS[index] if index < len(BOUNDS_MS) else BOUNDS_MS[-1] * 2
            return round(lower + (upper - lower) * ((rank - seen) / count), 1)
        seen += count
    return BOUNDS_MS[-1] * 2


def counts_of(row: Mapping[str, int]) -> list[int]:
    return [int(row.get(field) or 0) for field in BUCKET_FIELDS]
