"""What a golden path is once loaded (`GoldenPath`, its conditional files, the render limits), the file and
size limits, and the scaffolder's errors. Free of Django like the rest of the engine."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MANIFEST_FILENAME: Final = "template.yaml"
FILES_DIRNAME: Final = "files"
ANSWERS_FILENAME: Final = ".portal-answers.yml"
STEP_ACTIONS: Final = ("render", "git_commit", "publish", "register_catalog", "request_grants")

MAX_MANIFEST_BYTES: Final = 256 * 1024
MAX_STRING_VALUE_BYTES: Final = 64 * 1024
MAX_PARAMETERS_BYTES: Final = 1024 * 1024
MAX_PARAMETER_DEPTH: Final = 16
MAX_TEMPLATE_FILES: Final = 5_000
MAX_TEMPLATE_BYTES: Final = 50 * 1024 * 1024
MAX_TEMPLATE_DEPTH: Final = 32
MAX_PATH_BYTES: Final = 1024
MAX_SEGMENT_BYTES: Final = 255
# Editor and interpreter droppings that must never ship in a generated repository.
IGNORED_TEMPLATE_NAMES: Final = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".DS_Store"})

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
SEMVER_PATTERN: Final = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
)
# Parameter names become Jinja variables; a leading underscore is reserved for the engine.
PARAMETER_NAME_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
_RESERVED_NAME_PREFIX: Final = "_scaffolder"
_GUARD_LOOP_NAME: Final = f"{_RESERVED_NAME_PREFIX}_guard_loop"
_GUARD_TEXT_NAME: Final = f"{_RESERVED_NAME_PREFIX}_guard_text"
_TEMPLATE_MARKERS: Final = ("{{", "{%", "{#")
_HUGE_NUMBER_IN_FORMAT: Final = re.compile(r"[0-9]{7,}")


class ScaffolderError(Exception):
    """Base class for every error raised by the rendering engine."""


class TemplateError(ScaffolderError):
    """The golden path itself is broken: bad manifest, bad Jinja, bad file layout."""


class TemplateSecurityError(TemplateError):
    """The golden path tried something the sandbox forbids (Python internals, symlinks, escapes)."""


class RenderLimitError(TemplateError):
    """Rendering would exceed a size, count or time budget (a template bomb)."""


class UnsafePathError(ScaffolderError):
    """A file path would land outside the output folder or pass through a symlink."""


class ParameterError(ScaffolderError):
    """Parameter values failed validation; ``errors`` maps each field to one message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(sorted(errors.items()))
        summary = "; ".join(f"{name}: {message}" for name, message in self.errors.items())
        super().__init__(f"invalid parameters: {summary}")


@dataclass(frozen=True)
class RenderLimits:
    """Budgets that stop template bombs; tests pass smaller ones."""

    max_files: int = 5_000
    max_total_bytes: int = 50 * 1024 * 1024
    max_file_bytes: int = 10 * 1024 * 1024
    # Largest single string/list a template expression may build before it is even written out.
    max_value_size: int = 10 * 1024 * 1024
    max_numeric_argument: int = 1_000_000
    max_integer_bits: int = 4096
    max_range: int = 100_000
    max_loop_iterations: int = 1_000_000
    max_calls: int = 1_000_000
    time_limit_seconds: float = 30.0


DEFAULT_RENDER_LIMITS: Final = RenderLimits()


@dataclass(frozen=True)
class ConditionalFile:
    """A ``files.conditional`` rule: files matching ``path`` are kept only when ``when`` is true."""

    path: str
    when: str


@dataclass(frozen=True)
class GoldenPath:
    name: str
    title: str
    description: str
    version: str
    owner: str
    tags: list[str]
    parameters_schema: dict[str, Any]
    steps: list[dict[str, Any]]
    root: Path
    conditional_files: tuple[ConditionalFile, ...] = ()
    # Globs whose content is copied without Jinja (e.g. files that legitimately contain ``{{``).
    verbatim_files: tuple[str, ...] = ()
    # Extra template variables: name -> Jinja expression over the parameters, evaluated in order.
    computed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _SourceFile:
    path: str  # posix path relative to files/, possibly with templated segments
    content: bytes
