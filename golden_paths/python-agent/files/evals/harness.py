"""Run the golden dataset through the agent and fail when the mean score is below threshold."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .scorers import SCORERS, ScoredResult

DATASET_PATH = Path(__file__).resolve().parent / "golden.yaml"

AgentRunner = Callable[[str], ScoredResult]


@dataclass(frozen=True)
class EvalCase:
    id: str
    input: str
    scorer: str
    expected: Any


@dataclass(frozen=True)
class Dataset:
    threshold: float
    cases: tuple[EvalCase, ...]


@dataclass(frozen=True)
class CaseResult:
    case: EvalCase
    score: float
    output: str


@dataclass(frozen=True)
class EvalReport:
    threshold: float
    results: tuple[CaseResult, ...]

    @property
    def score(self) -> float:
        if not self.results:
            return 0.0
        return sum(result.score for result in self.results) / len(self.results)

    @property
    def passed(self) -> bool:
        return self.score >= self.threshold


def load_dataset(path: Path = DATASET_PATH) -> Dataset:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = tuple(
        EvalCase(
            id=str(case["id"]),
            input=str(case["input"]),
            scorer=str(case["scorer"]),
            expected=case["expected"],
        )
        for case in document["cases"]
    )
    unknown = sorted({case.scorer for case in cases} - set(SCORERS))
    if unknown:
        raise ValueError(f"unknown scorer(s) in {path.name}: {', '.join(unknown)}")
    return Dataset(threshold=float(document["threshold"]), cases=cases)


def scripted_model() -> Any:
    """pydantic-ai FunctionModel that echoes the prompt: the offline stand-in for a real model."""
    from pydantic_ai.messages import ModelResponse, TextPart, UserPromptPart
    from pydantic_ai.models.function import FunctionModel

    def echo(messages: list[Any], info: Any) -> ModelResponse:
        prompts = [
            part.content
            for message in messages
            for part in getattr(message, "parts", [])
            if isinstance(part, UserPromptPart)
        ]
        return ModelResponse(parts=[TextPart(f"Echo: {prompts[-1]}")])

    return FunctionModel(echo)


def default_runner() -> AgentRunner:
    # Imported lazily so the scorers stay usable without the agent's dependencies.
    import asyncio
    import os

    from {{ package }}.agent import (
        run,
    )

    model = os.environ.get("EVAL_MODEL") or scripted_model()

    def run_case(prompt: str) -> ScoredResult:
        # No MCP servers in the eval gate: it measures the agent's answers, not the tools'.
        return asyncio.run(run(prompt, model=model, targets=[]))

    return run_case


def run_evals(runner: AgentRunner | None = None, dataset: Dataset | None = None) -> EvalReport:
    dataset = dataset or load_dataset()
    runner = runner or default_runner()
    results = []
    for case in dataset.cases:
        result = runner(case.input)
        score = SCORERS[case.scorer](result, case.expected)
        results.append(CaseResult(case=case, score=score, output=result.output))
    return EvalReport(threshold=dataset.threshold, results=tuple(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the golden eval dataset.")
    parser.add_argument("--dataset", type=Path, default=DATASET_PATH)
    parser.add_argument("--threshold", type=float, help="Override the dataset's threshold.")
    arguments = parser.parse_args(argv)

    dataset = load_dataset(arguments.dataset)
    if arguments.threshold is not None:
        dataset = Dataset(threshold=arguments.threshold, cases=dataset.cases)
    report = run_evals(dataset=dataset)
    for result in report.results:
        print(f"{result.score:4.2f}  {result.case.scorer:<11}  {result.case.id}")
    verdict = "PASS" if report.passed else "FAIL"
    print(f"{verdict}: score {report.score:.2f} (threshold {report.threshold:.2f})")
    return 0 if report.passed else 1
