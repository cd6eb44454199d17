"""Golden path rendering engine: render a loaded golden path in memory (see `manifest` for loading and parameter
validation, `sandbox` for the Jinja environment), then write the files without following links.

Deliberately free of Django so the web app, Celery workers and tests can all call it. Templates
are data: ``template.yaml`` plus a ``files/`` tree rendered by Jinja's immutable sandbox. The
engine refuses anything that could let a template (or the values typed into its form) escape:
Python internals, symlinks, paths outside the output folder and output bombs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Undefined
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.exceptions import TemplateError as JinjaTemplateError

from scaffolder.golden_path import (
    ANSWERS_FILENAME,
    DEFAULT_RENDER_LIMITS,
    MANIFEST_FILENAME,
    MAX_PATH_BYTES,
    MAX_SEGMENT_BYTES,
    GoldenPath,
    RenderLimitError,
    RenderLimits,
    ScaffolderError,
    TemplateError,
    TemplateSecurityError,
    UnsafePathError,
)
from scaffolder.manifest import (
    _collect_source_files,
    _condition_template_source,
    _glob_matches,
    _is_templated,
    _template_text,
    _text_templates,
    validate_parameters,
)
from scaffolder.sandbox import _check_value_size, _compile, _GuardedSandbox

__all__ = ["render_golden_path", "write_rendered"]


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
