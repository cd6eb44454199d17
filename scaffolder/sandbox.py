"""The Jinja sandbox templates render in: immutable, no private attributes, and a budget on output size, loop
iterations and numbers so that a template cannot exhaust memory or CPU."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import DictLoader, StrictUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

from scaffolder.golden_path import (
    _GUARD_LOOP_NAME,
    _GUARD_TEXT_NAME,
    _HUGE_NUMBER_IN_FORMAT,
    _RESERVED_NAME_PREFIX,
    DEFAULT_RENDER_LIMITS,
    RenderLimitError,
    RenderLimits,
    TemplateError,
    TemplateSecurityError,
)


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
