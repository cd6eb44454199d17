"""Which source owns an agent's or tool's facts: a location, a file imported on the command line, an upload (web
or API), the scaffolder, the web UI, the API or the command line. Another source that names the entity is a
conflict, reported per document, unless a platform admin adopts it (audited), as Backstage refuses an entity
"already claimed by another location"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog.models import EntitySource, Location
from catalog.services import CatalogConflict


@dataclass(frozen=True)
class ImportOrigin:
    """The source an import speaks for: a location, a file (command line), an upload (web or API) or a scaffolder
    run. Documents name themselves "<name>#<document index>" inside it (`source_key`)."""

    kind: str
    location: Location | None = None

    @classmethod
    def for_import(cls, *, location: Location | None, kind: str | None) -> ImportOrigin:
        if location is not None:
            return cls(EntitySource.LOCATION, location)
        return cls(kind or EntitySource.IMPORT)


def _document_source(source_key: str) -> str:
    """The file, URL, upload or run part of a source key ("name#index")."""
    name, _, index = source_key.rpartition("#")
    return name if name and index.isdigit() else source_key


def source_describe(*, kind: str, location: Location | None, source_key: str) -> str:
    """The source as people read it in errors and reports."""
    where = _document_source(source_key)
    if kind == EntitySource.LOCATION:
        return f"location #{location.pk} ({location})" if location is not None else "a location that was deleted"
    if kind == EntitySource.FILE:
        return f"the file {where}"
    if kind == EntitySource.IMPORT:
        return f"the upload {where}"
    if kind == EntitySource.SCAFFOLDER:
        return f"the scaffolder ({where})"
    named: dict[str, str] = {
        EntitySource.UI: "the web UI",
        EntitySource.API: "the API",
        EntitySource.CLI: "the command line",
    }
    return named.get(kind, "an unrecorded source")


def source_claims(*, kind: str, location_id: int | None, source_key: str, origin: ImportOrigin, document: str) -> str:
    """Whether `origin`'s `document` may change an entity from the given source: "same" (its own source),
    "free" (no source recorded, or its location was deleted: the import claims it) or "other" (a conflict)."""
    if kind == EntitySource.UNRECORDED or (kind == EntitySource.LOCATION and location_id is None):
        return "free"
    if kind != origin.kind:
        return "other"
    if kind == EntitySource.LOCATION:
        return "same" if origin.location is not None and origin.location.pk == location_id else "other"
    if kind == EntitySource.SCAFFOLDER:
        return "same"  # one scaffolder; the run that registers checks the entity is its own
    return "same" if _document_source(source_key) == _document_source(document) else "other"


class SourceConflict(CatalogConflict):
    """Documents name entities that another source owns. `conflicts`: for each, the entity (kind, name), the
    document that named it and its current source, for an API answer (409)."""

    def __init__(self, conflicts: list[dict[str, Any]]) -> None:
        self.conflicts = conflicts
        first = conflicts[0]
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        super().__init__(
            f"{first['kind']} {first['name']!r} belongs to {first['current_source']}{more}; nothing was imported. "
            'Change it there, or have a platform admin adopt it here ("adopt": true).'
        )
