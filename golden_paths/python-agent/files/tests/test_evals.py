from __future__ import annotations

from evals.harness import load_dataset, main, run_evals


def test_it_passes_the_eval_gate() -> None:
    report = run_evals()
    assert report.passed, [(result.case.id, result.output) for result in report.results]


def test_it_fails_the_gate_below_the_threshold() -> None:
    assert main(["--threshold", "1.01"]) == 1


def test_it_exits_zero_when_the_gate_passes() -> None:
    assert main([]) == 0


def test_it_loads_the_golden_dataset() -> None:
    dataset = load_dataset()
    assert {case.scorer for case in dataset.cases} >= {"exact", "contains"}
    assert 0 < dataset.threshold <= 1
