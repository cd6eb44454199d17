"""Loading a golden path: its manifest (template.yaml) checked against the schema, its template files read
without following links, within the size limits, and the parameters validated against its JSON Schema."""

from __future__ import annotations

import copy
import errno
import functools
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import NoSuchResource

from scaffolder.golden_path import (
    _TEMPLATE_MARKERS,
    DEFAULT_RENDER_LIMITS,
    DNS_LABEL_PATTERN,
    FILES_DIRNAME,
    IGNORED_TEMPLATE_NAMES,
    MANIFEST_FILENAME,
    MAX_MANIFEST_BYTES,
    MAX_PARAMETER_DEPTH,
    MAX_PARAMETERS_BYTES,
    MAX_PATH_BYTES,
    MAX_STRING_VALUE_BYTES,
    MAX_TEMPLATE_BYTES,
    MAX_TEMPLATE_DEPTH,
    MAX_TEMPLATE_FILES,
    PARAMETER_NAME_PATTERN,
    SEMVER_PATTERN,
    STEP_ACTIONS,
    ConditionalFile,
    GoldenPath,
    ParameterError,
    RenderLimitError,
    TemplateError,
    TemplateSecurityError,
    _SourceFile,
)
from scaffolder.sandbox import _compile, _GuardedSandbox

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
