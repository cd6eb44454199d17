"""What an import did, per document: counts, outcomes, errors and warnings, conflicts with other sources, owner
changes and adoptions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog.formats import ParsedEntity


@dataclass
class ImportIssue:
    source: str
    index: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.index is None else f"{self.source} document {self.index}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "index": self.index, "field": self.field, "message": self.message}


@dataclass
class ImportReport:
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[ImportIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped_items: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    merged: int = 0  # documents describing an entity another document of the import describes too
    # Entities another source owns (refused), with that source; owner changes and adoptions made.
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    owner_changes: list[dict[str, Any]] = field(default_factory=list)
    adopted: list[dict[str, Any]] = field(default_factory=list)
    # Changes not written because they wait for an approval (raising an agent's autonomy to 4 or 5).
    held: list[dict[str, Any]] = field(default_factory=list)

    def add_outcome(self, entity: ParsedEntity, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.outcomes.append(
            {
                "kind": entity.kind,
                "name": entity.name,
                "source": entity.source,
                "index": entity.index,
                "outcome": outcome,
            }
        )

    def hold(self, entity: ParsedEntity, changes: list[Any]) -> None:
        """Record the catalog.services.HeldChange list of an updated agent."""
        for change in changes:
            message = change.message
            if self.dry_run:
                message = f"Autonomy {change.requested} would wait for an approval request (dry run: none filed)."
            self.held.append(
                {
                    "kind": entity.kind,
                    "name": entity.name,
                    "field": change.field,
                    "current": change.current,
                    "requested": change.requested,
                    "request": None if self.dry_run else change.request_id,
                    "message": f"{entity.kind} {entity.name}: {message}",
                }
            )

    def fail(
        self, entity: ParsedEntity | None, source: str, index: int | None, errors: Mapping[str, list[str]]
    ) -> None:
        self.failed += 1
        for field_name, messages in errors.items():
            for message in messages:
                self.errors.append(ImportIssue(source, index, field_name, message))
        if entity is not None:
            self.outcomes.append(
                {"kind": entity.kind, "name": entity.name, "source": source, "index": index, "outcome": "failed"}
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": [issue.as_dict() for issue in self.errors],
            "warnings": self.warnings,
            "skipped_items": self.skipped_items,
            "merged": self.merged,
            "conflicts": self.conflicts,
            "owner_changes": self.owner_changes,
            "adopted": self.adopted,
            "held": self.held,
            "entities": self.outcomes,
        }

    @property
    def ok(self) -> bool:
        return self.failed == 0
