"""Parse a large multi-document stream on every core.

Loading YAML is pure Python over libyaml's events and holds the GIL, so threads cannot share it; a 10,000-document
Backstage file took about 1.5 s of one core while the database, and the machine's other cores, waited. Documents
parse independently of each other (``safe_yaml.split_chunks``), so a large stream is cut into consecutive slices:
this process parses the first while fresh interpreters (``python -m catalog.formats.slice_worker``) parse the
others, and the results are joined in document order. Fresh interpreters, not ``multiprocessing``: a fork of a
threaded server (gunicorn threads, Celery) can deadlock, and spawn/forkserver re-import the caller's main module
(manage.py, a benchmark script) in every child. A worker imports only ``catalog.formats``, which needs no Django.

A worker that cannot start, fails or runs too long costs nothing but time: its slice is parsed here instead, with
the same limits, so the outcome never depends on how the work was split.

Web requests parse in their own process (`in_this_process()`): a web worker never starts interpreters; an import
too large for a request runs in Celery (catalog.import_runs), where, as on the command line, workers may start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final

logger = logging.getLogger(__name__)

# Below this a worker's start-up (~0.1 s) is not paid back; above it each process gets at least this many documents.
PARALLEL_MIN_DOCUMENTS: Final = 2_000
MAX_PROCESSES: Final = 8
HEAD_START_DOCUMENTS: Final = 500
WORKER_TIMEOUT_SECONDS: Final = 120
_PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]

SliceParser = Callable[[list[tuple[int, str]], int, str, int], list[Any]]
_processes_allowed: ContextVar[bool] = ContextVar("yaml_worker_processes_allowed", default=True)


@contextlib.contextmanager
def in_this_process() -> Iterator[None]:
    """Parse without starting worker processes (web requests)."""
    token = _processes_allowed.set(False)
    try:
        yield
    finally:
        _processes_allowed.reset(token)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def process_count(documents: int) -> int:
    if documents < PARALLEL_MIN_DOCUMENTS:
        return 1
    return min(_cores(), MAX_PROCESSES, documents // (PARALLEL_MIN_DOCUMENTS // 2))


class _Worker:
    """One slice parsed by a worker process; `result()` falls back to parsing it here."""

    def __init__(self, parse: SliceParser, args: tuple[Any, ...]) -> None:
        self.parse = parse
        self.args = args
        self.output: bytes | None = None
        self.problem = ""
        self.thread = threading.Thread(target=self._run, name="yaml-slice-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        # The call goes in and the answer comes out through temporary files, not pipes: a pipe is fed and drained
        # a few kilobytes at a time by this thread, which needs the GIL for each piece while the main thread
        # parses, and waited up to 5 ms (the GIL's switch interval) each time. With pipes the worker spent ~0.8 s
        # of a 10,000-document import waiting for its 1.4 MB of input; a file hands it over in one write.
        call = (self.parse.__module__, self.parse.__qualname__, self.args)
        with (
            tempfile.TemporaryFile() as request,
            tempfile.TemporaryFile() as answer,
            tempfile.TemporaryFile() as errors,
        ):
            request.write(pickle.dumps(call, protocol=5))
            request.seek(0)
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "catalog.formats.slice_worker"],
                    stdin=request,
                    stdout=answer,
                    stderr=errors,
                    cwd=_PROJECT_ROOT,
                )
            except OSError as error:
                self.problem = f"cannot start: {error}"
                return
            try:
                process.wait(timeout=WORKER_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self.problem = f"no answer within {WORKER_TIMEOUT_SECONDS} s"
                return
            if process.returncode != 0:
                errors.seek(0)
                self.problem = f"exit status {process.returncode}: {errors.read().decode(errors='replace')[-500:]}"
                return
            answer.seek(0)
            self.output = answer.read()

    def result(self) -> list[Any]:
        self.thread.join()
        if self.output is not None:
            # Our own child's answer, built by this module's code from parsed data: not input from outside.
            return pickle.loads(self.output)  # noqa: S301
        logger.warning("a YAML slice worker failed (%s); parsing its slice in this process", self.problem)
        return self.parse(*self.args)


def parse_slices_in_parallel(
    parse: SliceParser, chunks: list[tuple[int, str]], *, source: str, max_depth: int
) -> list[Any]:
    """`parse(chunks, first_index, source, max_depth)` over consecutive slices of `chunks`, joined in order."""
    processes = process_count(len(chunks)) if _processes_allowed.get() else 1
    if processes == 1:
        return parse(chunks, 0, source, max_depth)
    # This process starts at once; a worker first spends ~0.13 s starting Python and importing the parser (~650
    # documents), but this process also splits the text and unpickles the answers: 500 balanced them (measured).
    worker_size = max(1, -(-(len(chunks) - HEAD_START_DOCUMENTS) // processes))
    own_size = len(chunks) - worker_size * (processes - 1)
    bounds = range(own_size, len(chunks), worker_size)
    workers = [_Worker(parse, (chunks[start : start + worker_size], start, source, max_depth)) for start in bounds]
    items = parse(chunks[:own_size], 0, source, max_depth)
    for worker in workers:
        items.extend(worker.result())
    return items
