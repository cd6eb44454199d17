"""Golden path rendering engine: load a template folder, validate parameters, render in memory.

Deliberately free of Django so the web app, Celery workers and tests can all call it. Templates
are data: ``template.yaml`` plus a ``files/`` tree rendered by Jinja's immutable sandbox. The
engine refuses anything that could let a template (or the values typed into its form) escape:
Python internals, symlinks, paths outside the output folder and output bombs.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import functools
import json
import math
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from jinja2 import DictLoader, StrictUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import NoSuchResource

__all__ = [
    "ANSWERS_FILENAME",
    "DEFAULT_RENDER_LIMITS",
    "STEP_ACTIONS",
    "ConditionalFile",
    "GoldenPath",
    "ParameterError",
    "RenderLimitError",
    "RenderLimits",
    "ScaffolderError",
    "TemplateError",
    "TemplateSecurityError",
    "UnsafePathError",
    "load_golden_path",
    "render_golden_path",
    "validate_parameters",
    "write_rendered",
]

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


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

_MANIFEST_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "title", "description", "version", "owner", "parameters", "steps"],
    "properties": {
        "name": {"type": "string", "pattern": DNS_LABEL_PATTERN},
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "minLength": 1, "maxLength": 2000},
        "version": {"type": "string", "pattern": SEMVER_PATTERN},
        "owner": {"type": "string", "pattern": DNS_LABEL_PATTERN},
        "tags": {
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9+#]{0,61}[a-z0-9+#])?$"},
        },
        "parameters": {"type": "object"},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "action", "name"],
                "properties": {
                    "id": {"type": "string", "pattern": r"^[a-z][a-z0-9_-]{0,62}$"},
                    "action": {"enum": list(STEP_ACTIONS)},
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "input": {"type": "object"},
                },
            },
        },
        "computed": {
            "type": "object",
            "propertyNames": {"pattern": PARAMETER_NAME_PATTERN.pattern},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 2000},
        },
        "files": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "conditional": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["path", "when"],
                        "properties": {
                            "path": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES},
                            "when": {"type": "string", "minLength": 1, "maxLength": 2000},
                        },
                    },
                },
                "verbatim": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES},
                },
            },
        },
    },
}


def _refuse_remote_reference(uri: str) -> Any:
    # Parameter schemas come from git; resolving a $ref must never reach the network.
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


_LOCAL_ONLY_REGISTRY: Final[Registry[Any]] = Registry(retrieve=_refuse_remote_reference)  # type: ignore[call-arg]


class _NoAliasSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses YAML anchors/aliases (no billion-laughs expansions)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in template.yaml", event.start_mark
            )
        return super().compose_node(parent, index)


def load_golden_path(folder: Path, *, within: Path | None = None) -> GoldenPath:
    """Load and validate a golden path folder (``template.yaml`` + ``files/``).

    Pass ``within`` (e.g. the root of a git checkout) when the folder path came from someone
    else: the folder must then sit inside it without passing through any symlink.
    """
    if within is not None:
        _refuse_symlinks_between(Path(within), Path(folder))
    try:
        root = Path(folder).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise TemplateError(f"{folder}: template folder does not exist") from exc
    if not root.is_dir():
        raise TemplateError(f"{folder}: not a directory")
    if within is not None and not root.is_relative_to(Path(within).resolve()):
        raise TemplateSecurityError(f"{folder}: resolves outside {within}")

    manifest = _read_manifest(root)
    where = f"{root.name}/{MANIFEST_FILENAME}"
    _check_against_schema(manifest, _MANIFEST_SCHEMA, where)

    parameters_schema = manifest["parameters"]
    _check_parameters_schema(parameters_schema, where)
    _check_steps(manifest["steps"], where)

    file_rules = manifest.get("files") or {}
    conditional_files = tuple(
        ConditionalFile(
            path=_normalise_rule_glob(rule["path"], f"{where}: files.conditional[{index}].path"),
            when=rule["when"],
        )
        for index, rule in enumerate(file_rules.get("conditional", []))
    )
    verbatim_files = tuple(
        _normalise_rule_glob(pattern, f"{where}: files.verbatim[{index}]")
        for index, pattern in enumerate(file_rules.get("verbatim", []))
    )

    golden_path = GoldenPath(
        name=manifest["name"],
        title=manifest["title"],
        description=manifest["description"],
        version=manifest["version"],
        owner=manifest["owner"],
        tags=list(manifest.get("tags", [])),
        parameters_schema=parameters_schema,
        steps=[dict(step) for step in manifest["steps"]],
        root=root,
        conditional_files=conditional_files,
        verbatim_files=verbatim_files,
        computed=tuple((manifest.get("computed") or {}).items()),
    )
    # Read and compile everything now so a broken or hostile template fails at registration,
    # not halfway through somebody's scaffolding run.
    sources = _collect_source_files(root)
    _check_template_sources(golden_path, sources)
    return golden_path


def _refuse_symlinks_between(base: Path, folder: Path) -> None:
    try:
        relative = folder.absolute().relative_to(base.absolute())
    except ValueError as exc:
        raise TemplateSecurityError(f"{folder}: not inside {base}") from exc
    if ".." in relative.parts:
        raise TemplateSecurityError(f"{folder}: '..' is not allowed in a template folder path")
    current = base.absolute()
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            raise TemplateSecurityError(f"{folder}: '{current.relative_to(base.absolute())}' is a symlink")


def _read_manifest(root: Path) -> dict[str, Any]:
    data = _read_regular_file(root, MANIFEST_FILENAME, MAX_MANIFEST_BYTES)
    try:
        manifest = yaml.load(data.decode("utf-8"), Loader=_NoAliasSafeLoader)  # noqa: S506 - SafeLoader subclass
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{root.name}/{MANIFEST_FILENAME}: not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{root.name}/{MANIFEST_FILENAME}: invalid YAML: {exc}") from exc
    if not isinstance(manifest, dict):
        raise TemplateError(f"{root.name}/{MANIFEST_FILENAME}: must be a mapping")
    return manifest


def _read_regular_file(root: Path, name: str, max_bytes: int) -> bytes:
    try:
        fd = os.open(root / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise TemplateError(f"{root.name}/{name}: missing") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TemplateSecurityError(f"{root.name}/{name}: is a symlink") from exc
        raise TemplateError(f"{root.name}/{name}: cannot be read ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise TemplateSecurityError(f"{root.name}/{name}: not a regular file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TemplateError(f"{root.name}/{name}: larger than {max_bytes} bytes")
    return data


def _check_against_schema(instance: Any, schema: dict[str, Any], where: str) -> None:
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda error: (list(map(str, error.path)), error.validator))
    if errors:
        error = errors[0]
        location = _format_location(error.path) or "(top level)"
        raise TemplateError(f"{where}: {location}: {_describe_manifest_error(error)}")


def _describe_manifest_error(error: ValidationError) -> str:
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field(s): {', '.join(unknown)}"
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return f"missing required field(s): {', '.join(missing)}"
    return _describe_validation_error(error)


def _format_location(path: Any) -> str:
    location = ""
    for part in path:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    return location


def _check_parameters_schema(schema: dict[str, Any], where: str) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        location = _format_location(exc.path)
        raise TemplateError(
            f"{where}: parameters{'.' + location if location else ''}: not a valid JSON Schema: {exc.message}"
        ) from exc
    if schema.get("type") != "object":
        raise TemplateError(f"{where}: parameters.type: must be 'object'")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise TemplateError(f"{where}: parameters.properties: must be a mapping")
    for name, property_schema in properties.items():
        if not PARAMETER_NAME_PATTERN.match(name):
            raise TemplateError(
                f"{where}: parameters.properties.{name}: parameter names must be lowercase identifiers "
                "(letters, digits, underscores; starting with a letter)"
            )
        if isinstance(property_schema, dict) and "default" in property_schema:
            validator = Draft202012Validator(property_schema, registry=_LOCAL_ONLY_REGISTRY)
            error = next(iter(validator.iter_errors(property_schema["default"])), None)
            if error is not None:
                raise TemplateError(
                    f"{where}: parameters.properties.{name}.default: {_describe_validation_error(error)}"
                )
    for name in schema.get("required", []):
        if name not in properties:
            raise TemplateError(f"{where}: parameters.required: '{name}' is not a declared property")


def _check_steps(steps: list[dict[str, Any]], where: str) -> None:
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if step["id"] in seen:
            raise TemplateError(f"{where}: steps[{index}].id: duplicate step id '{step['id']}'")
        seen.add(step["id"])


def _normalise_rule_glob(pattern: str, where: str) -> str:
    cleaned = pattern.strip()
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    cleaned = cleaned.rstrip("/")
    parts = cleaned.split("/")
    if not cleaned or cleaned.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in cleaned:
        raise TemplateError(f"{where}: '{pattern}' must be a relative path or glob inside files/")
    return cleaned


@functools.lru_cache(maxsize=512)
def _compile_glob(pattern: str) -> re.Pattern[str]:
    """Translate a path glob: ``*`` and ``?`` stay within one segment, ``**`` crosses segments.

    A pattern naming a directory also covers everything below it.
    """
    regex: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            regex.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            regex.append(".*")
            index += 2
        elif pattern[index] == "*":
            regex.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            regex.append("[^/]")
            index += 1
        else:
            regex.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(regex) + r"(?:/.*)?", re.DOTALL)


def _glob_matches(pattern: str, path: str) -> bool:
    return _compile_glob(pattern).fullmatch(path) is not None


def _check_template_sources(golden_path: GoldenPath, sources: list[_SourceFile]) -> None:
    where = f"{golden_path.root.name}/{MANIFEST_FILENAME}"
    source_paths = [source.path for source in sources]
    for index, rule in enumerate(golden_path.conditional_files):
        if not any(_glob_matches(rule.path, path) for path in source_paths):
            raise TemplateError(f"{where}: files.conditional[{index}].path: '{rule.path}' matches no file in files/")
    for index, pattern in enumerate(golden_path.verbatim_files):
        if not any(_glob_matches(pattern, path) for path in source_paths):
            raise TemplateError(f"{where}: files.verbatim[{index}]: '{pattern}' matches no file in files/")

    environment = _GuardedSandbox(_text_templates(golden_path, sources), DEFAULT_RENDER_LIMITS)
    for name, expression in golden_path.computed:
        if name in golden_path.parameters_schema.get("properties", {}):
            raise TemplateError(f"{where}: computed.{name}: clashes with a parameter of the same name")
        _compile(environment, "{{ " + expression + " }}", f"{where}: computed.{name}")
    for index, rule in enumerate(golden_path.conditional_files):
        _compile(environment, _condition_template_source(rule.when), f"{where}: files.conditional[{index}].when")
    for source in sources:
        for segment in source.path.split("/"):
            if segment.lower() == ".git":
                raise TemplateSecurityError(f"files/{source.path}: templates may not write into .git")
            if _is_templated(segment):
                _compile(environment, segment, f"files/{source.path}: file name")
        text = _template_text(golden_path, source)
        if text is not None:
            _compile(environment, text, f"files/{source.path}")


def _collect_source_files(root: Path) -> list[_SourceFile]:
    """Read files/ without ever following a symlink (openat + O_NOFOLLOW all the way down)."""
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TemplateSecurityError(f"{root}: template folder is a symlink or unreadable") from exc
    try:
        try:
            files_fd = os.open(FILES_DIRNAME, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
        except FileNotFoundError as exc:
            raise TemplateError(f"{root.name}/{FILES_DIRNAME}/: missing") from exc
        except OSError as exc:
            raise TemplateSecurityError(
                f"{root.name}/{FILES_DIRNAME}/: is a symlink or not a directory; it must stay in the template"
            ) from exc
        sources: list[_SourceFile] = []
        try:
            _walk_source_directory(files_fd, "", 0, sources, [0])
        finally:
            os.close(files_fd)
    finally:
        os.close(root_fd)
    return sorted(sources, key=lambda source: source.path)


def _walk_source_directory(
    directory_fd: int, prefix: str, depth: int, sources: list[_SourceFile], total_bytes: list[int]
) -> None:
    if depth > MAX_TEMPLATE_DEPTH:
        raise TemplateError(f"files/{prefix}: nested deeper than {MAX_TEMPLATE_DEPTH} folders")
    with os.scandir(directory_fd) as scanner:
        entries = sorted(scanner, key=lambda entry: entry.name)
    for entry in entries:
        relative = f"{prefix}{entry.name}"
        if entry.name in IGNORED_TEMPLATE_NAMES:
            continue
        if entry.is_symlink():
            raise TemplateSecurityError(f"files/{relative}: is a symlink; golden paths may not contain symlinks")
        if entry.is_dir(follow_symlinks=False):
            child_fd = _open_nofollow(entry.name, os.O_RDONLY | os.O_DIRECTORY, directory_fd, f"files/{relative}")
            try:
                _walk_source_directory(child_fd, f"{relative}/", depth + 1, sources, total_bytes)
            finally:
                os.close(child_fd)
        elif entry.is_file(follow_symlinks=False):
            if len(sources) >= MAX_TEMPLATE_FILES:
                raise RenderLimitError(f"files/: more than {MAX_TEMPLATE_FILES} files")
            file_fd = _open_nofollow(entry.name, os.O_RDONLY | os.O_NONBLOCK, directory_fd, f"files/{relative}")
            with os.fdopen(file_fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise TemplateSecurityError(f"files/{relative}: not a regular file")
                content = handle.read(MAX_TEMPLATE_BYTES - total_bytes[0] + 1)
            total_bytes[0] += len(content)
            if total_bytes[0] > MAX_TEMPLATE_BYTES:
                raise RenderLimitError(f"files/: larger than {MAX_TEMPLATE_BYTES} bytes in total")
            sources.append(_SourceFile(path=relative, content=content))
        else:
            raise TemplateSecurityError(f"files/{relative}: not a regular file or directory")


def _open_nofollow(name: str, flags: int, directory_fd: int, label: str) -> int:
    try:
        return os.open(name, flags | os.O_NOFOLLOW, dir_fd=directory_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise TemplateSecurityError(f"{label}: is a symlink") from exc
        raise TemplateError(f"{label}: cannot be read ({exc.strerror})") from exc


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


class _ValueTooLargeError(Exception):
    def __init__(self, *, whole_payload: bool) -> None:
        super().__init__()
        self.whole_payload = whole_payload  # False: one string over 64 KiB; True: the 1 MiB total


class _NotJsonDataError(Exception):
    pass


def validate_parameters(gp: GoldenPath, values: Mapping[str, Any]) -> dict[str, Any]:
    """Apply defaults and validate ``values`` against the golden path's parameter schema.

    Returns the cleaned values (sorted keys, defaults filled in). Raises ``ParameterError`` with
    one message per field, all fields at once.
    """
    if not isinstance(values, Mapping):
        raise ParameterError({"__all__": "Parameters must be an object."})

    # Size first, before anything walks or copies a possibly enormous payload.
    errors = _check_payload_size(values)
    if errors:
        raise ParameterError(errors)

    properties: dict[str, Any] = gp.parameters_schema.get("properties", {})
    for name in values:
        if name not in properties:
            errors[name] = "Unknown parameter."

    cleaned: dict[str, Any] = {}
    for name in sorted(properties):
        property_schema = properties[name]
        if name in values:
            cleaned[name] = _normalise_value(values[name], property_schema)
        elif isinstance(property_schema, dict) and "default" in property_schema:
            cleaned[name] = copy.deepcopy(property_schema["default"])

    validator = Draft202012Validator(
        gp.parameters_schema,
        registry=_LOCAL_ONLY_REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    for error in sorted(
        validator.iter_errors(cleaned), key=lambda error: (list(map(str, error.path)), error.validator)
    ):
        if not error.path and error.validator == "required":
            for name in error.validator_value:
                if name not in cleaned:
                    errors.setdefault(name, "This field is required.")
        elif not error.path and error.validator == "additionalProperties":
            continue  # unknown names were reported above
        elif error.path:
            field_name = str(error.path[0])
            message = _describe_validation_error(error)
            if len(error.path) > 1:
                message = f"At {_format_location(list(error.path)[1:]) or 'item'}: {message}"
            errors.setdefault(field_name, message)
        else:
            errors.setdefault("__all__", _describe_validation_error(error))
    if errors:
        raise ParameterError(errors)
    return cleaned


def _check_payload_size(values: Mapping[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    total = 0
    for name, value in values.items():
        if not isinstance(name, str):
            errors["__all__"] = "Parameter names must be strings."
            continue
        if len(name) > 256:
            errors["__all__"] = "Parameter name too long."
            continue
        try:
            total += len(name) + _json_size(value, MAX_PARAMETERS_BYTES - total, 0)
        except _ValueTooLargeError as exc:
            errors[name] = "Value too large."
            if exc.whole_payload:
                errors["__all__"] = "Value too large: parameters exceed 1 MiB in total."
                break
            continue
        except _NotJsonDataError as exc:
            errors[name] = str(exc)
        if total > MAX_PARAMETERS_BYTES:
            errors.setdefault("__all__", "Value too large: parameters exceed 1 MiB in total.")
            break
    return errors


def _json_size(value: Any, remaining: int, depth: int) -> int:
    """Approximate JSON size of ``value``; stops as soon as a limit is crossed."""
    if depth > MAX_PARAMETER_DEPTH:
        raise _NotJsonDataError(f"Nested deeper than {MAX_PARAMETER_DEPTH} levels.")
    if value is None or isinstance(value, bool):
        size = 5
    elif isinstance(value, int):
        size = value.bit_length() // 3 + 2
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJsonDataError("Must be a finite number.")
        size = 24
    elif isinstance(value, str):
        # len() is O(1): a 10 MB string is refused without being scanned.
        if len(value) > MAX_STRING_VALUE_BYTES:
            raise _ValueTooLargeError(whole_payload=False)
        try:
            size = len(value.encode("utf-8")) + 2
        except UnicodeEncodeError as exc:
            raise _NotJsonDataError("Must be valid Unicode text.") from exc
        if size - 2 > MAX_STRING_VALUE_BYTES:
            raise _ValueTooLargeError(whole_payload=False)
    elif isinstance(value, (list, tuple)):
        size = 2
        for item in value:
            size += 1 + _json_size(item, remaining - size, depth + 1)
            if size > remaining:
                raise _ValueTooLargeError(whole_payload=True)
    elif isinstance(value, Mapping):
        size = 2
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJsonDataError("Object keys must be strings.")
            size += len(key) + 4 + _json_size(item, remaining - size - len(key), depth + 1)
            if size > remaining:
                raise _ValueTooLargeError(whole_payload=True)
    else:
        raise _NotJsonDataError("Must be JSON data (string, number, boolean, list or object).")
    if size > remaining:
        raise _ValueTooLargeError(whole_payload=True)
    return size


def _normalise_value(value: Any, schema: Any) -> Any:
    """Deep-copy into plain JSON types with sorted keys, so rendering never depends on input order."""
    if isinstance(value, Mapping):
        return {key: _normalise_value(value[key], None) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        item_schema = schema.get("items") if isinstance(schema, dict) else None
        return [_normalise_value(item, item_schema) for item in value]
    if isinstance(schema, dict) and schema.get("type") == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_TYPE_NAMES: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _describe_validation_error(error: ValidationError) -> str:
    """Human message that never echoes the (possibly huge) offending value."""
    keyword, expected = error.validator, error.validator_value
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "Must be " + " or ".join(_TYPE_NAMES.get(kind, str(kind)) for kind in kinds) + "."
    if keyword == "enum":
        shown = ", ".join(json.dumps(option) for option in list(expected)[:20])
        return f"Must be one of: {shown}."
    if keyword == "const":
        return f"Must be {json.dumps(expected)}."
    if keyword == "pattern":
        return f"Must match the pattern {expected}."
    if keyword == "minLength":
        return f"Must be at least {expected} characters long."
    if keyword == "maxLength":
        return f"Must be at most {expected} characters long."
    if keyword == "minimum":
        return f"Must be at least {expected}."
    if keyword == "maximum":
        return f"Must be at most {expected}."
    if keyword == "exclusiveMinimum":
        return f"Must be greater than {expected}."
    if keyword == "exclusiveMaximum":
        return f"Must be less than {expected}."
    if keyword == "minItems":
        return f"Must have at least {expected} item(s)."
    if keyword == "maxItems":
        return f"Must have at most {expected} item(s)."
    if keyword == "uniqueItems":
        return "Items must be unique."
    if keyword == "format":
        return f"Must be a valid {expected}."
    if keyword == "not":
        return "This value is not allowed."
    if keyword == "required":
        missing = [name for name in expected if isinstance(error.instance, dict) and name not in error.instance]
        return f"Missing required field(s): {', '.join(missing)}."
    if keyword == "additionalProperties":
        return "Unknown field(s) present."
    return error.message[:200]


# --------------------------------------------------------------------------------------------
# Sandbox
# --------------------------------------------------------------------------------------------


class _RenderBudget:
    """Counts loop iterations and calls across one render and enforces the wall-clock limit."""

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.time_limit_seconds
        self.loop_iterations = 0
        self.calls = 0

    def tick_loop(self) -> None:
        self.loop_iterations += 1
        if self.loop_iterations > self.limits.max_loop_iterations:
            raise RenderLimitError(f"more than {self.limits.max_loop_iterations} loop iterations")
        if self.loop_iterations % 1024 == 0:
            self.check_deadline()

    def tick_call(self) -> None:
        self.calls += 1
        if self.calls > self.limits.max_calls:
            raise RenderLimitError(f"more than {self.limits.max_calls} calls")
        if self.calls % 1024 == 0:
            self.check_deadline()

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitError(f"rendering took longer than {self.limits.time_limit_seconds:g} s")


class _CountedIterable:
    """Wraps every ``{% for %}`` iterable so nested loops cannot spin forever."""

    __slots__ = ("_budget", "_iterable")

    def __init__(self, iterable: Any, budget: _RenderBudget) -> None:
        self._iterable = iterable
        self._budget = budget

    def __iter__(self) -> Iterator[Any]:
        for item in self._iterable:
            self._budget.tick_loop()
            yield item

    def __len__(self) -> int:
        return len(self._iterable)  # TypeError for generators is what Jinja's loop.length expects


class _BoundedNamespace(Namespace):
    """``namespace()`` whose attributes cannot grow past the value-size limit (doubling bombs)."""

    limits: RenderLimits = DEFAULT_RENDER_LIMITS

    def __setitem__(self, name: str, value: Any) -> None:
        _check_value_size(value, type(self).limits)
        super().__setitem__(name, value)


def _check_value_size(value: Any, limits: RenderLimits) -> Any:
    if isinstance(value, (str, bytes, list, tuple, dict)) and len(value) > limits.max_value_size:
        raise RenderLimitError(f"a template expression built a value larger than {limits.max_value_size} items")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > limits.max_integer_bits:
        raise RenderLimitError(f"a template expression built an integer larger than {limits.max_integer_bits} bits")
    return value


def _check_numeric_arguments(arguments: Any, limits: RenderLimits) -> None:
    for argument in arguments:
        if isinstance(argument, int) and not isinstance(argument, bool) and abs(argument) > limits.max_numeric_argument:
            raise RenderLimitError(f"numeric argument {argument} exceeds {limits.max_numeric_argument}")


def _check_format_string(format_string: Any) -> None:
    if isinstance(format_string, str) and _HUGE_NUMBER_IN_FORMAT.search(format_string):
        raise RenderLimitError("format strings may not request widths or precisions of a million or more")


def _estimated_growth(kind: str, subject: Any, arguments: tuple[Any, ...], keyword_arguments: Mapping[str, Any]) -> int:
    """Estimate the size of a few string operations whose output can dwarf their input."""
    if kind == "join" and hasattr(subject, "__len__"):
        separator = arguments[0] if arguments else keyword_arguments.get("d", "")
        return len(subject) * len(separator) if isinstance(separator, str) else 0
    if kind == "str.join" and isinstance(subject, str) and arguments and hasattr(arguments[0], "__len__"):
        return len(subject) * len(arguments[0])
    if kind in ("replace", "str.replace", "expandtabs", "str.expandtabs"):
        kind = kind.removeprefix("str.")
    if kind == "replace" and isinstance(subject, str) and len(arguments) >= 2:
        old, new = str(arguments[0]), str(arguments[1])
        occurrences = len(subject) + 1 if old == "" else subject.count(old)
        return len(subject) + occurrences * max(0, len(new) - len(old))
    if kind == "expandtabs" and isinstance(subject, str):
        tab_size = arguments[0] if arguments else keyword_arguments.get("tabsize", 8)
        return len(subject) + subject.count("\t") * int(tab_size)
    if kind == "indent" and isinstance(subject, str):
        width = arguments[0] if arguments else keyword_arguments.get("width", 4)
        width_size = len(width) if isinstance(width, str) else int(width)
        return len(subject) + (subject.count("\n") + 1) * width_size
    return 0


class _GuardTransformer(NodeTransformer):
    """Wraps loop iterables and ``~`` concatenations in budget checks at compile time."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)  # transforms children in place
        node.iter = _guard_call(_GUARD_LOOP_NAME, node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _guard_call(_GUARD_TEXT_NAME, node)


def _guard_call(function_name: str, argument: nodes.Node) -> nodes.Call:
    return nodes.Call(
        nodes.Name(function_name, "load", lineno=argument.lineno),
        [argument],
        [],
        None,
        None,
        lineno=argument.lineno,
    )


def _refuse_private_access(tree: nodes.Template) -> None:
    """Static check: no ``_private`` attribute, item, name or ``attr()`` lookup anywhere."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.NSRef, nodes.Filter)):
        reached: str | None = None
        if isinstance(node, (nodes.Getattr, nodes.NSRef)):
            reached = node.attr
        elif isinstance(node, nodes.Name):
            # Plain names only resolve template variables; just keep the engine's guards unshadowed.
            reached = node.name if node.name.startswith(_RESERVED_NAME_PREFIX) else None
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            reached = node.arg.value if isinstance(node.arg.value, str) else None
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            first = node.args[0]
            reached = first.value if isinstance(first, nodes.Const) and isinstance(first.value, str) else None
        if reached is not None and reached.startswith("_"):
            raise SecurityError(
                f"line {node.lineno}: access to '{reached}' is not allowed "
                "(templates may not reach Python internals or the engine's reserved names)"
            )


class _GuardedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox plus budgets for loops, calls, operators and value sizes."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, templates: Mapping[str, str], limits: RenderLimits) -> None:
        # Autoescape stays off: we render source code and config files, never HTML.
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            extensions=(),
            # Only the template's own files can be included; no filesystem access at all.
            loader=DictLoader(dict(templates)),
            auto_reload=False,
        )
        self.limits = limits
        self.budget = _RenderBudget(limits)
        bounded_namespace = type("namespace", (_BoundedNamespace,), {"limits": limits})
        self.globals.pop("lipsum", None)
        self.globals.update(
            {
                "range": self._guarded_range,
                "namespace": bounded_namespace,
                _GUARD_LOOP_NAME: self._guard_loop,
                _GUARD_TEXT_NAME: self._guard_text,
            }
        )
        self.filters = {name: self._guard_filter(name, function) for name, function in self.filters.items()}

    # Every template string (files, includes, names, conditions) passes through here.
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _refuse_private_access(tree)
        guarded = _GuardTransformer().visit(tree)
        guarded.set_environment(self)
        return guarded

    def _guard_loop(self, iterable: Any) -> _CountedIterable:
        return _CountedIterable(iterable, self.budget)

    def _guard_text(self, value: Any) -> Any:
        return _check_value_size(value, self.limits)

    def _guarded_range(self, *arguments: int) -> range:
        numbers = range(*arguments)
        if len(numbers) > self.limits.max_range:
            raise RenderLimitError(f"range() larger than {self.limits.max_range} items")
        return numbers

    def _guard_filter(self, filter_name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        limits = self.limits
        takes_context = hasattr(function, "jinja_pass_arg")

        @functools.wraps(function)  # keeps jinja_pass_arg so Jinja passes context/environment
        def guarded(*arguments: Any, **keyword_arguments: Any) -> Any:
            data = arguments[1:] if takes_context else arguments
            if data:
                _check_numeric_arguments(data[1:], limits)
                _check_numeric_arguments(keyword_arguments.values(), limits)
                if filter_name == "format":
                    _check_format_string(data[0])
                if _estimated_growth(filter_name, data[0], tuple(data[1:]), keyword_arguments) > limits.max_value_size:
                    raise RenderLimitError(f"the '{filter_name}' filter would build a value that is too large")
            return _check_value_size(function(*arguments, **keyword_arguments), limits)

        return guarded

    def call(self, context: Any, callable_object: Any, /, *arguments: Any, **keyword_arguments: Any) -> Any:
        self.budget.tick_call()
        _check_numeric_arguments(arguments, self.limits)
        _check_numeric_arguments(keyword_arguments.values(), self.limits)
        method_name = getattr(callable_object, "__name__", "")
        subject = getattr(callable_object, "__self__", None)
        if isinstance(subject, str) and (
            _estimated_growth(f"str.{method_name}", subject, arguments, keyword_arguments) > self.limits.max_value_size
        ):
            raise RenderLimitError(f"str.{method_name}() would build a value that is too large")
        result = super().call(context, callable_object, *arguments, **keyword_arguments)
        return _check_value_size(result, self.limits)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, (str, bytes, list, tuple))
                    and isinstance(count, int)
                    and len(sequence) * count > self.limits.max_value_size
                ):
                    raise RenderLimitError("repetition would build a value that is too large")
        elif operator == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and right > 0
                and max(abs(left).bit_length(), 1) * right > self.limits.max_integer_bits
            ):
                raise RenderLimitError("exponentiation would build an integer that is too large")
        elif operator == "%" and isinstance(left, str):
            _check_format_string(left)
            _check_numeric_arguments(right if isinstance(right, tuple) else (right,), self.limits)
        try:
            result = super().call_binop(context, operator, left, right)
        except OverflowError as exc:
            raise RenderLimitError(f"arithmetic overflow: {exc}") from exc
        return _check_value_size(result, self.limits)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        _check_format_string(value.__self__)
        limits = self.limits

        def guarded(*arguments: Any, **keyword_arguments: Any) -> str:
            _check_numeric_arguments(arguments, limits)
            _check_numeric_arguments(keyword_arguments.values(), limits)
            result: str = _check_value_size(wrapper(*arguments, **keyword_arguments), limits)
            return result

        return guarded


def _compile(environment: _GuardedSandbox, source: str, label: str) -> Any:
    try:
        return environment.from_string(source)
    except SecurityError as exc:
        raise TemplateSecurityError(f"{label}: {exc}") from exc
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{label}: line {exc.lineno}: {exc.message}") from exc
    except JinjaTemplateError as exc:
        raise TemplateError(f"{label}: {exc}") from exc
    except RecursionError as exc:
        raise RenderLimitError(f"{label}: template nests too deeply") from exc


def _is_templated(text: str) -> bool:
    return any(marker in text for marker in _TEMPLATE_MARKERS)


def _condition_template_source(expression: str) -> str:
    return "{% if " + expression + " %}1{% else %}0{% endif %}"


def _template_text(golden_path: GoldenPath, source: _SourceFile) -> str | None:
    """The file's text when it is a Jinja template; None for binary and verbatim files."""
    if any(_glob_matches(pattern, source.path) for pattern in golden_path.verbatim_files):
        return None
    try:
        return source.content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text_templates(golden_path: GoldenPath, sources: list[_SourceFile]) -> dict[str, str]:
    templates: dict[str, str] = {}
    for source in sources:
        text = _template_text(golden_path, source)
        if text is not None:
            templates[source.path] = text
    return templates


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def render_golden_path(
    gp: GoldenPath, values: Mapping[str, Any], *, limits: RenderLimits = DEFAULT_RENDER_LIMITS
) -> dict[str, bytes]:
    """Render the golden path in memory: relative posix path -> bytes, sorted, deterministic.

    Parameter values are passed to Jinja as data and never rendered again, so ``{{ 7*7 }}`` typed
    into a form reaches the output literally. Adds ``.portal-answers.yml``.
    """
    cleaned = validate_parameters(gp, values)
    sources = _collect_source_files(gp.root)
    environment = _GuardedSandbox(_text_templates(gp, sources), limits)
    context = _with_computed_values(gp, environment, cleaned)

    rendered: dict[str, bytes] = {}
    origin: dict[str, str] = {}
    total_bytes = 0
    for source in sources:
        label = f"files/{source.path}"
        if not _is_included(gp, environment, source.path, context):
            continue
        target = _render_path(environment, source.path, context, label)
        if target is None:
            continue
        if target == ANSWERS_FILENAME:
            raise TemplateError(f"{label}: '{ANSWERS_FILENAME}' is reserved for the portal")
        if target in rendered:
            raise TemplateError(f"{label}: renders to '{target}', which files/{origin[target]} also produces")
        text = _template_text(gp, source)
        content = source.content if text is None else _render_text(environment, text, context, label)
        total_bytes += len(content)
        if len(rendered) + 1 >= limits.max_files:  # +1 keeps room for the answers file
            raise RenderLimitError(f"rendering produces more than {limits.max_files} files")
        if total_bytes > limits.max_total_bytes:
            raise RenderLimitError(f"rendering produces more than {limits.max_total_bytes} bytes")
        rendered[target] = content
        origin[target] = source.path

    _refuse_file_directory_clashes(rendered, TemplateError)
    rendered[ANSWERS_FILENAME] = _answers_document(gp, cleaned)
    return dict(sorted(rendered.items()))


def _with_computed_values(gp: GoldenPath, environment: _GuardedSandbox, values: dict[str, Any]) -> dict[str, Any]:
    context = dict(values)
    for name, expression in gp.computed:
        label = f"{gp.root.name}/{MANIFEST_FILENAME}: computed.{name}"
        # Parse through the guarded _parse first: it applies the static checks for internals.
        _compile(environment, "{{ " + expression + " }}", label)
        try:
            value = environment.compile_expression(expression, undefined_to_none=False)(**context)
            if isinstance(value, Undefined):
                raise TemplateError(f"{label}: expression is undefined")
            context[name] = _check_value_size(value, environment.limits)
        except RenderLimitError as exc:
            raise RenderLimitError(f"{label}: {exc}") from exc
        except SecurityError as exc:
            raise TemplateSecurityError(f"{label}: {exc}") from exc
        except (JinjaTemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise TemplateError(f"{label}: {exc}") from exc
    return context


def _is_included(gp: GoldenPath, environment: _GuardedSandbox, path: str, values: dict[str, Any]) -> bool:
    for index, rule in enumerate(gp.conditional_files):
        if not _glob_matches(rule.path, path):
            continue
        label = f"{gp.root.name}/{MANIFEST_FILENAME}: files.conditional[{index}].when"
        outcome = _render_text(environment, _condition_template_source(rule.when), values, label)
        if outcome != b"1":
            return False
    return True


def _render_path(environment: _GuardedSandbox, path: str, values: dict[str, Any], label: str) -> str | None:
    segments: list[str] = []
    for segment in path.split("/"):
        if _is_templated(segment):
            segment = _render_text(environment, segment, values, f"{label}: file name").decode("utf-8")
            if segment == "":
                return None  # an empty segment is how a template says "leave this file out"
        segments.append(segment)
    try:
        return _check_safe_relative_path("/".join(segments))
    except UnsafePathError as exc:
        raise UnsafePathError(f"{label}: file name renders to an unsafe path: {exc}") from exc


def _render_text(environment: _GuardedSandbox, source: str, values: dict[str, Any], label: str) -> bytes:
    template = _compile(environment, source, label)
    limits = environment.limits
    chunks: list[str] = []
    size = 0
    try:
        # Stream so a runaway template is stopped at the limit rather than after exhausting memory.
        for chunk in template.generate(values):
            size += len(chunk)
            if size > limits.max_file_bytes:
                raise RenderLimitError(f"output larger than {limits.max_file_bytes} bytes")
            chunks.append(chunk)
            environment.budget.check_deadline()
        return "".join(chunks).encode("utf-8")
    except RenderLimitError as exc:
        raise RenderLimitError(f"{label}: {exc}") from exc
    except SecurityError as exc:
        raise TemplateSecurityError(f"{label}: {exc}") from exc
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{label}: line {exc.lineno}: {exc.message}") from exc
    except JinjaTemplateError as exc:
        raise TemplateError(f"{label}: {exc}") from exc
    except (RecursionError, MemoryError) as exc:
        raise RenderLimitError(f"{label}: template recursed or allocated too much") from exc
    except UnicodeEncodeError as exc:
        raise TemplateError(f"{label}: output is not valid Unicode text") from exc
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateError(f"{label}: {type(exc).__name__}: {exc}") from exc


def _answers_document(gp: GoldenPath, values: dict[str, Any]) -> bytes:
    document = {"answers": values, "template": gp.name, "version": gp.version}
    body = yaml.safe_dump(document, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return ("# Generated by Agent Portal. The answers used to scaffold this repository.\n" + body).encode("utf-8")


def _check_safe_relative_path(path: str) -> str:
    """Refuse anything that could resolve outside the output folder or into git metadata."""
    if not isinstance(path, str) or not path:
        raise UnsafePathError("empty file path")
    if "\x00" in path:
        raise UnsafePathError(f"{path!r}: contains a NUL byte")
    if "\\" in path:
        raise UnsafePathError(f"{path!r}: contains a backslash")
    if any(ord(character) < 32 or ord(character) == 127 for character in path):
        raise UnsafePathError(f"{path!r}: contains a control character")
    if path.startswith("/"):
        raise UnsafePathError(f"{path!r}: absolute paths are not allowed")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise UnsafePathError(f"{path[:80]!r}...: longer than {MAX_PATH_BYTES} bytes")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise UnsafePathError(f"{path!r}: empty, '.' or '..' path segments are not allowed")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise UnsafePathError(f"{path!r}: a path segment is longer than {MAX_SEGMENT_BYTES} bytes")
        if segment.lower() == ".git":
            raise UnsafePathError(f"{path!r}: writing into .git is not allowed")
    return path


def _refuse_file_directory_clashes(paths: Mapping[str, bytes], error_class: type[ScaffolderError]) -> None:
    directories = {path.rsplit("/", 1)[0] for path in paths if "/" in path}
    parents = {
        "/".join(directory.split("/")[: depth + 1])
        for directory in directories
        for depth in range(directory.count("/") + 1)
    }
    clashes = sorted(parents & set(paths))
    if clashes:
        raise error_class(f"'{clashes[0]}' would be both a file and a directory")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_rendered(files: Mapping[str, bytes], output_dir: Path) -> None:
    """Write rendered files under ``output_dir`` without ever following a symlink.

    Refuses unsafe names, a symlinked ``output_dir``, and any symlink already inside it. Every
    directory is opened with ``O_NOFOLLOW`` relative to its parent, so a symlink swapped in
    mid-write is refused too. Existing regular files are replaced (unlinked first, so a hard
    link cannot redirect the write).
    """
    for path, content in files.items():
        _check_safe_relative_path(path)
        if not isinstance(content, bytes):
            raise TypeError(f"{path}: content must be bytes")
    _refuse_file_directory_clashes(files, UnsafePathError)

    output_dir = Path(output_dir)
    if output_dir.is_symlink():
        raise UnsafePathError(f"{output_dir}: output folder is a symlink")
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        root_fd = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise UnsafePathError(f"{output_dir}: output folder is a symlink or not a directory") from exc
    try:
        _refuse_existing_symlinks(root_fd, "", 0)
        for path in sorted(files):
            _write_one(root_fd, path, files[path])
    finally:
        os.close(root_fd)


def _refuse_existing_symlinks(directory_fd: int, prefix: str, depth: int) -> None:
    if depth > 64:
        raise UnsafePathError(f"{prefix}: output tree nested too deeply")
    with os.scandir(directory_fd) as scanner:
        entries = list(scanner)
    for entry in entries:
        relative = f"{prefix}{entry.name}"
        if entry.is_symlink():
            raise UnsafePathError(f"{relative}: the output folder already contains a symlink")
        if entry.is_dir(follow_symlinks=False):
            child_fd = _open_output_directory(entry.name, directory_fd, relative)
            try:
                _refuse_existing_symlinks(child_fd, f"{relative}/", depth + 1)
            finally:
                os.close(child_fd)


def _open_output_directory(name: str, parent_fd: int, label: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise UnsafePathError(f"{label}: is a symlink or not a directory") from exc
        raise


def _write_one(root_fd: int, path: str, content: bytes) -> None:
    *directories, filename = path.split("/")
    opened: list[int] = []
    current_fd = root_fd
    try:
        for depth, directory in enumerate(directories):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o755, dir_fd=current_fd)
            current_fd = _open_output_directory(directory, current_fd, "/".join(directories[: depth + 1]))
            opened.append(current_fd)
        try:
            existing = os.stat(filename, dir_fd=current_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if stat.S_ISLNK(existing.st_mode):
                raise UnsafePathError(f"{path}: refusing to write through a symlink")
            if not stat.S_ISREG(existing.st_mode):
                raise UnsafePathError(f"{path}: exists and is not a regular file")
            os.unlink(filename, dir_fd=current_fd)
        try:
            file_fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=current_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EEXIST):
                raise UnsafePathError(f"{path}: appeared while writing (possible symlink race)") from exc
            raise
        with os.fdopen(file_fd, "wb") as handle:
            handle.write(content)
    finally:
        for descriptor in reversed(opened):
            os.close(descriptor)
