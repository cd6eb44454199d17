"""Large streams parsed by worker processes read exactly as when this process parses them alone."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from catalog.formats import parallel, parse_document_bytes
from catalog.formats.parallel import _PROJECT_ROOT


def _component(name: str, owner: str = "team-a") -> str:
    return (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata: {{name: {name}, description: Agent {name}}}\n"
        f"spec: {{type: ai-agent, lifecycle: production, owner: {owner}}}\n"
    )


def _mixed_stream(documents: int) -> bytes:
    """Entities, plus every other outcome a document can have, spread over the whole stream."""
    parts = ["# a catalog\n" + _component("agent-0")]
    for index in range(1, documents):
        if index % 97 == 0:
            parts.append("broken: [unclosed\n")
        elif index % 89 == 0:
            parts.append(
                _component(f"agent-{index - 50}")
            )  # a duplicate of an earlier document, maybe in another slice
        elif index % 83 == 0:
            parts.append(
                f"apiVersion: backstage.io/v1alpha1\nkind: Template\nmetadata: {{name: tpl-{index}}}\nspec: {{}}\n"
            )
        elif index % 79 == 0:
            parts.append("just: a mapping, not an entity\n")
        elif index % 73 == 0:
            parts.append("# only a comment\n")
        elif index % 71 == 0:
            parts.append("a: &x 1\nb: *x\n")
        else:
            parts.append(_component(f"agent-{index}"))
    return "---\n".join(parts).encode()


def _parse(content: bytes) -> object:
    return parse_document_bytes(content, source="big.yaml")


@pytest.fixture
def small_parallel_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Splits a few hundred documents over worker processes, as 10,000 would be on any machine."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_DOCUMENTS", 100)
    monkeypatch.setattr(parallel, "HEAD_START_DOCUMENTS", 20)
    monkeypatch.setattr(parallel, "_cores", lambda: 3)


def test_a_stream_split_over_worker_processes_reads_as_one_parsed_here(
    monkeypatch: pytest.MonkeyPatch, small_parallel_threshold: None, caplog: pytest.LogCaptureFixture
) -> None:
    content = _mixed_stream(400)
    started: list[str] = []
    original_popen = subprocess.Popen

    def recording_popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        started.append(" ".join(args[0]))  # type: ignore[arg-type]
        return original_popen(*args, **kwargs)  # type: ignore[arg-type,call-overload]

    monkeypatch.setattr(subprocess, "Popen", recording_popen)

    split = _parse(content)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_DOCUMENTS", 10**9)
    alone = _parse(content)

    assert len(started) == 2 and all("catalog.formats.slice_worker" in command for command in started)
    assert "failed" not in caplog.text  # the workers' answers were used, not parsed again here
    assert split == alone
    assert len(alone.entities) > 300  # type: ignore[attr-defined]
    messages = " | ".join(error.message for error in alone.errors)  # type: ignore[attr-defined]
    assert "duplicate agent name 'agent-39'" in messages
    assert "anchors (&name) and aliases" in messages
    assert "while parsing a flow" in messages
    assert len(alone.skipped) == 4  # type: ignore[attr-defined]


def test_a_worker_that_cannot_start_costs_only_time(
    monkeypatch: pytest.MonkeyPatch, small_parallel_threshold: None, caplog: pytest.LogCaptureFixture
) -> None:
    content = _mixed_stream(300)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_DOCUMENTS", 10**9)
    alone = _parse(content)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_DOCUMENTS", 100)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")

    assert _parse(content) == alone
    assert "parsing its slice in this process" in caplog.text


def test_the_worker_runs_nothing_outside_the_formats_package() -> None:
    call = pickle.dumps(("os", "system", ("echo owned",)))

    finished = subprocess.run(
        [sys.executable, "-m", "catalog.formats.slice_worker"], input=call, capture_output=True, cwd=_PROJECT_ROOT
    )

    assert finished.returncode != 0
    assert finished.stdout == b""
    assert b"only catalog.formats functions" in finished.stderr


def test_small_streams_stay_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_workers(*args: object, **kwargs: object) -> None:
        raise AssertionError("a small stream started a worker process")

    monkeypatch.setattr(subprocess, "Popen", no_workers)

    result = _parse(_mixed_stream(300))

    assert len(result.entities) > 250  # type: ignore[attr-defined]
    assert parallel.process_count(parallel.PARALLEL_MIN_DOCUMENTS - 1) == 1


def test_a_failing_worker_reports_its_error_and_its_slice_is_parsed_here(caplog: pytest.LogCaptureFixture) -> None:
    # The worker refuses a function outside catalog.formats and exits with an error on stderr (a temporary file).
    worker = parallel._Worker(json.dumps, ({"slice": [1, 2]},))  # type: ignore[arg-type]

    assert worker.result() == '{"slice": [1, 2]}'
    assert worker.problem.startswith("exit status 1") and "only catalog.formats functions" in worker.problem
    assert "parsing its slice in this process" in caplog.text
