"""Race-safe "add to a counter row, creating it if missing" with the ORM: an UPDATE of F() increments, and only when
no row matched, an INSERT in a savepoint; a concurrent INSERT that won (unique constraint) is answered by the UPDATE
again. On PostgreSQL the loser's INSERT waits for the winner's commit, so the retried UPDATE sees its row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.db.models.functions import Greatest


def _update(
    model: type[models.Model], key: Mapping[str, Any], counts: Mapping[str, Any], latest: Mapping[str, Any]
) -> int:
    changes: dict[str, Any] = {name: F(name) + value for name, value in counts.items() if value}
    changes.update({name: Greatest(F(name), value) for name, value in latest.items()})
    if not changes:
        return 1
    return model._default_manager.filter(**key).update(**changes)


def add_counts(
    model: type[models.Model],
    *,
    key: Mapping[str, Any],
    counts: Mapping[str, Any],
    latest: Mapping[str, Any] | None = None,
) -> None:
    """Add `counts` to the row with `key` and raise the `latest` columns to at least the given values."""
    latest = latest or {}
    if _update(model, key, counts, latest):
        return
    try:
        with transaction.atomic():
            model._default_manager.create(**key, **counts, **latest)
    except IntegrityError:
        _update(model, key, counts, latest)
