"""Scorers turn one agent result into a score between 0 and 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class ScoredResult(Protocol):
    @property
    def output(self) -> str: ...

    @property
    def tools_called(self) -> tuple[str, ...]: ...


Scorer = Callable[[ScoredResult, Any], float]


def exact(result: ScoredResult, expected: Any) -> float:
    return 1.0 if result.output.strip() == str(expected).strip() else 0.0


def contains(result: ScoredResult, expected: Any) -> float:
    return 1.0 if str(expected).lower() in result.output.lower() else 0.0


def tool_called(result: ScoredResult, expected: Any) -> float:
    return 1.0 if str(expected) in result.tools_called else 0.0


SCORERS: dict[str, Scorer] = {"exact": exact, "contains": contains, "tool_called": tool_called}
