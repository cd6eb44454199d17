"""Errors the scaffolder's services raise; views, the API and the command turn them into answers for people."""

from __future__ import annotations

from collections.abc import Mapping


class ScaffoldError(Exception):
    """Bad input: ``errors`` maps each field to its messages."""

    def __init__(self, errors: Mapping[str, list[str] | str]) -> None:
        self.errors = {key: [value] if isinstance(value, str) else list(value) for key, value in errors.items()}
        super().__init__("; ".join(f"{key}: {' '.join(messages)}" for key, messages in self.errors.items()))


class ScaffoldPermissionError(Exception):
    pass


class ScaffoldConflict(Exception):
    """The run is not in a state that allows this (e.g. retrying a run that did not fail)."""
