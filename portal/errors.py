"""Base classes of the domain errors every app raises from its services.

Apps subclass these (catalog's CatalogError is an InvalidInput, approvals' ApprovalConflict a Conflict ...), so the
API maps them to the one error shape by class and status without importing any app: dependencies point one way,
towards `portal`."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """A service refused; `status` is the HTTP status the API answers with."""

    status = 400


class InvalidInput(DomainError):
    """Bad input; `errors` maps each field (or path, e.g. `skills[0].id`) to what was wrong and what is accepted."""

    status = 400

    def __init__(self, errors: Mapping[str, list[str] | str]) -> None:
        self.errors = {field: [msg] if isinstance(msg, str) else list(msg) for field, msg in errors.items()}
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items()))


class PermissionDenied(DomainError):
    """The actor may not do this; the message says who may."""

    status = 403


class Conflict(DomainError):
    """The object changed meanwhile, or is in a state that no longer allows this."""

    status = 409
