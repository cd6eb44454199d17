"""Hostile-input safe loading of YAML (multi-document) and JSON descriptors.

Whole-input checks raise ``InputRejected`` before any parsing:

* more than ``max_bytes`` (default 10 MB) or more than ``max_documents`` documents (default
  20,000; a 10 MB stream of millions of tiny documents would otherwise cost minutes of CPU);
* binary garbage: NUL bytes or invalid UTF-8.

Per-document checks turn into ``YamlDocument.error`` so one bad document never hides the
others (the stream is split on ``---`` lines and every document is parsed on its own):

* YAML anchors and aliases are refused outright (no billion-laughs expansion is possible);
* nesting deeper than ``max_depth`` (default 50) is refused while streaming events; data is
  built iteratively from the parser's events, so no recursive code ever sees the input;
* only the standard JSON-compatible tags are allowed (no ``!!python/...``, ``!!binary``, ...);
* duplicate and non-scalar mapping keys are refused (parsers that disagree on duplicates are
  a classic way to smuggle values past a check).

Scalars resolve by the YAML 1.2 core schema, like Backstage's own YAML parser: ``on``/``yes``
and dates stay strings, ``0o17`` is an int. The libyaml C parser (``yaml.CBaseLoader``, the
parser half of ``yaml.CSafeLoader``) is used when available; building objects straight from its
events is about twice as fast as PyYAML's Python constructor.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import yaml

DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_DEPTH: Final = 50
# Bounds the CPU a 10 MB stream of tiny documents could cost (millions of them otherwise).
DEFAULT_MAX_DOCUMENTS: Final = 20_000

# Only events are needed from the parser; libyaml's C parser when available.
_EventLoader: type[yaml.BaseLoader] = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)
_TAG: Final = "tag:yaml.org,2002:"
_SCALAR_TAGS: Final = frozenset(f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null"))
_NO_KEY: Final = object()


class InputRejected(ValueError):
    """The whole input is refused (too big, binary); nothing in it was parsed."""


@dataclass(frozen=True)
class YamlDocument:
    """One document of a stream: ``data`` is None when it is empty or when ``error`` is set."""

    index: int
    line: int
    data: Any
    error: str | None = None


# (tag, pattern, first characters) of the YAML 1.2 core schema's non-string scalars.
CORE_SCHEMA_RESOLVERS: Final = (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", tuple("tTfF")),
    ("null", r"^(?:~|null|Null|NULL|)$", ("~", "n", "N", "")),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", tuple("-+0123456789")),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        tuple("-+0123456789."),
    ),
)


def add_core_schema_resolvers(resolver_class: type[yaml.resolver.BaseResolver]) -> None:
    """Teach a loader or dumper class the YAML 1.2 core schema's implicit scalars."""
    for tag, pattern, first_chars in CORE_SCHEMA_RESOLVERS:
        resolver_class.add_implicit_resolver(f"{_TAG}{tag}", re.compile(pattern), list(first_chars))


def _resolvers_by_first_char() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    table: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for tag, pattern, first_chars in CORE_SCHEMA_RESOLVERS:
        for char in first_chars:
            table.setdefault(char, []).append((f"{_TAG}{tag}", re.compile(pattern)))
    return table


_RESOLVERS: Final = _resolvers_by_first_char()


def _to_int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits, 10)


def _to_float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


def _convert(tag: str, text: str) -> Any:
    if tag == f"{_TAG}str":
        return text
    if tag == f"{_TAG}int":
        return _to_int(text)
    if tag == f"{_TAG}float":
        return _to_float(text)
    if tag == f"{_TAG}bool":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not a boolean")
        return text.lower() == "true"
    if text.lower() not in ("", "~", "null"):
        raise ValueError(f"{text!r} is not null")
    return None


def _tagged_scalar(event: yaml.ScalarEvent) -> Any:
    """A scalar with an explicit tag: only the standard JSON-compatible ones are honoured."""
    if event.tag == "!":
        return event.value
    if event.tag not in _SCALAR_TAGS:
        raise _problem(f"YAML tag {event.tag!r} is not allowed", event)
    return _convert(event.tag, event.value)


def _plain_scalar(text: str) -> Any:
    """Resolve an untagged plain scalar by the YAML 1.2 core schema."""
    for resolved_tag, pattern in _RESOLVERS.get(text[:1], ()):
        if pattern.match(text):
            return _convert(resolved_tag, text)
    return text


def _problem(message: str, event: yaml.Event) -> yaml.MarkedYAMLError:
    # libyaml's Mark is its own class with the same attributes as yaml.error.Mark.
    mark: Any = event.start_mark
    return yaml.MarkedYAMLError(problem=message, problem_mark=mark)


def _anchor_problem(event: yaml.Event) -> yaml.MarkedYAMLError:
    return _problem("YAML anchors (&name) and aliases (*name) are not allowed", event)


def _open_collection(stack: list[list[Any]], event: yaml.CollectionStartEvent, max_depth: int) -> None:
    is_mapping = type(event) is yaml.MappingStartEvent
    if event.anchor is not None:
        raise _anchor_problem(event)
    if event.tag not in (None, "!", f"{_TAG}map" if is_mapping else f"{_TAG}seq"):
        raise _problem(f"YAML tag {event.tag!r} is not allowed", event)
    if stack and stack[-1][1] is _NO_KEY:
        raise _problem("mapping keys must be plain scalars, not null", event)
    if len(stack) >= max_depth:
        raise _problem(f"nesting is deeper than {max_depth} levels", event)
    # A frame is [container, pending key]; a list's pending key is always None.
    stack.append([{}, _NO_KEY] if is_mapping else [[], None])


def _build(chunk: str, max_depth: int) -> Any:
    """Parse one document's text into plain data; raises yaml.YAMLError or ValueError.

    Iterative (an explicit stack), so no nesting can exhaust the interpreter's stack. The loop
    is inlined on purpose: it runs once per parser event and dominates load time.
    """
    loader = _EventLoader(chunk)
    # Typed loosely: the loop dispatches on type(event), which mypy cannot narrow through.
    get_event: Callable[[], Any] = loader.get_event
    stack: list[list[Any]] = []
    root: Any = None
    documents = 0
    try:
        while (event := get_event()) is not None:
            kind = type(event)
            if kind is yaml.ScalarEvent:
                if event.anchor is not None:
                    raise _anchor_problem(event)
                text = event.value
                if event.tag is not None:
                    value = _tagged_scalar(event)
                elif event.implicit[0] and text[:1] in _RESOLVERS:
                    value = _plain_scalar(text)
                else:
                    value = text
                is_scalar = True
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                _open_collection(stack, event, max_depth)
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                value, is_scalar = stack.pop()[0], False
            elif kind is yaml.AliasEvent:
                raise _anchor_problem(event)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _problem("expected a single document; found another after '...'", event)
                continue
            elif kind is yaml.StreamEndEvent:
                break
            else:
                continue
            if not stack:
                root = value
                continue
            frame = stack[-1]
            key = frame[1]
            if key is None:
                frame[0].append(value)
            elif key is _NO_KEY:
                if not is_scalar or value is None:
                    raise _problem("mapping keys must be plain scalars, not null", event)
                if value in frame[0]:
                    raise _problem(f"duplicate mapping key {value!r}", event)
                frame[1] = value
            else:
                frame[0][key] = value
                frame[1] = _NO_KEY
    finally:
        loader.dispose()
    return root


def decode_text(content: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Return the input as text, or raise ``InputRejected`` for oversize or binary input."""
    raw = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    if len(raw) > max_bytes:
        raise InputRejected(f"input is {len(raw)} bytes; the limit is {max_bytes} bytes")
    if b"\x00" in raw:
        raise InputRejected("input contains NUL bytes: this is binary data, not a text descriptor")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputRejected(f"input is not valid UTF-8 (bad byte at offset {error.start})") from None
    return text.removeprefix("\ufeff")


def _is_blank_chunk(chunk: str) -> bool:
    """True when a chunk holds only blank lines, comments and directives (no document)."""
    for line in chunk.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%")) and stripped not in ("---", "..."):
            return False
    return True


def check_document_count(count: int, max_documents: int) -> None:
    """Raise ``InputRejected`` when an input holds more documents than allowed."""
    if count > max_documents:
        raise InputRejected(f"input has more than {max_documents} documents")


def _split_documents(text: str, max_documents: int) -> list[tuple[int, str]]:
    """Split a stream on ``---`` lines; returns (first line number, chunk) pairs."""
    # Stop counting one past the cap: the rejection must cost no more than a capped input.
    found = itertools.islice(_DOCUMENT_START.finditer(text), max_documents + 1)
    starts = [match.start() for match in found]
    preamble = text[: starts[0]] if starts else text
    check_document_count(len(starts) + (0 if _is_blank_chunk(preamble) else 1), max_documents)
    bounds = [0, *[start for start in starts if start > 0], len(text)]
    chunks: list[tuple[int, str]] = []
    line = 1
    for begin, end in itertools.pairwise(bounds):
        chunks.append((line, text[begin:end]))
        line += text.count("\n", begin, end)
    # A preamble of comments/directives before the first '---' belongs to the first document.
    if len(chunks) > 1 and starts and starts[0] > 0 and _is_blank_chunk(chunks[0][1]):
        first_line, preamble = chunks.pop(0)
        chunks[0] = (first_line, preamble + chunks[0][1])
    return chunks


def _describe_yaml_error(error: Exception, first_line: int) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    text = f"{context}: {problem}" if context else str(problem)
    if mark is not None:
        text += f" (line {first_line + mark.line}, column {mark.column + 1})"
    return f"invalid YAML: {text}"


def _load_chunk(chunk: str, first_line: int, max_depth: int) -> tuple[Any, str | None]:
    try:
        return _build(chunk, max_depth), None
    except yaml.YAMLError as error:
        return None, _describe_yaml_error(error, first_line)
    except (ValueError, OverflowError) as error:  # e.g. an int too long to convert
        return None, f"invalid YAML value: {error}"


def split_yaml_documents(
    text: str, *, max_depth: int = DEFAULT_MAX_DEPTH, max_documents: int = DEFAULT_MAX_DOCUMENTS
) -> Iterator[YamlDocument]:
    """Check the document count (``InputRejected``), then yield every document lazily.

    Empty documents keep their index (as in PyYAML) but carry no data.
    """
    return load_chunks(split_chunks(text, max_documents), max_depth)


def split_chunks(text: str, max_documents: int = DEFAULT_MAX_DOCUMENTS) -> list[tuple[int, str]]:
    """The text of every document of a stream, with its first line; ``InputRejected`` past the document cap.
    Chunks parse independently of each other, so slices of them can be loaded in separate processes."""
    return _split_documents(text, max_documents)


def load_chunks(
    chunks: list[tuple[int, str]], max_depth: int = DEFAULT_MAX_DEPTH, first_index: int = 0
) -> Iterator[YamlDocument]:
    """Load consecutive chunks of `split_chunks`, the first being document number `first_index`."""
    for offset, (first_line, chunk) in enumerate(chunks):
        index = first_index + offset
        if _is_blank_chunk(chunk):
            yield YamlDocument(index=index, line=first_line, data=None)
            continue
        data, error = _load_chunk(chunk, first_line, max_depth)
        yield YamlDocument(index=index, line=first_line, data=data, error=error)


def load_yaml_documents(
    content: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_documents: int = DEFAULT_MAX_DOCUMENTS,
) -> list[YamlDocument]:
    """Load a multi-document YAML stream; raises ``InputRejected`` only for whole-input problems."""
    text = decode_text(content, max_bytes=max_bytes)
    documents = list(split_yaml_documents(text, max_depth=max_depth, max_documents=max_documents))
    # A stream of nothing but comments is one empty document, as in PyYAML.
    return documents or [YamlDocument(index=0, line=1, data=None)]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate object key {key!r}")
        seen.add(key)
    return result  # unreachable: a shorter dict means a repeated key


def nesting_depth(value: Any) -> int:
    """Depth of nested lists/dicts (a scalar is 0), computed without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_text(text: str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse JSON text strictly (no NaN, no duplicate keys, bounded depth); raises ValueError."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_object, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError(f"nesting is deeper than {max_depth} levels") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    # Every level of nesting opens a bracket, so text with few of them needs no walk.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(value) > max_depth:
        raise ValueError(f"nesting is deeper than {max_depth} levels")
    return value


def load_json_document(
    content: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Decode and parse one JSON document; ``InputRejected`` or ValueError on bad input."""
    return parse_json_text(decode_text(content, max_bytes=max_bytes), max_depth=max_depth)
