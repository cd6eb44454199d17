"""Denied grant checks as findings, without a database write on every denial.

A gateway asks the call-time check (`POST /api/v1/grants/check/`) before every tool call, so an agent that keeps
calling a tool it was not granted is denied many times a second. Writing each denial into its finding (one UPDATE of
the same row) cost 1.9 ms of CPU per denial, and concurrent checks queued on that row's lock: bench.grant_check
measured p95 40 ms at 8 clients, against a floor of 5 ms.

So each web process writes the first denial of an (agent, tool, verdict) at once: the finding opens, and its
owners are notified, from the check that saw it. Repeats are counted in memory and written together, in one
transaction, by the first denial that comes DENIAL_COUNT_SECONDS after the last such write, and when the process
exits. Denials that come less often than that are each written at once; while they keep coming, a finding's count
and last-seen time trail by at most that long. A process killed outright loses its uncounted repeats, never a
finding.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from django.utils import timezone

from runtime.findings import DeniedCalls, findings_from_denied_checks

logger = logging.getLogger(__name__)

DENIAL_COUNT_SECONDS = 5.0
# Past this many (agent, tool, verdict) keys a process forgets which it has written: the next denial of each is
# written at once again (a count, never a lost finding).
MAX_KEYS = 10_000

Key = tuple[str, str, str]  # agent, tool, verdict


class _Repeats:
    __slots__ = ("capability", "count", "environment", "first_seen", "last_seen", "reason")

    def __init__(self, seen: datetime, capability: str, environment: str, reason: str) -> None:
        self.count, self.first_seen, self.last_seen = 1, seen, seen
        self.capability, self.environment, self.reason = capability, environment, reason


class DeniedChecks:
    """Thread-safe: gunicorn's threads share one per process."""

    def __init__(
        self,
        *,
        count_seconds: float = DENIAL_COUNT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[Iterable[DeniedCalls]], object] = findings_from_denied_checks,
    ) -> None:
        self._lock = threading.Lock()
        self._written: set[Key] = set()
        self._repeats: dict[Key, _Repeats] = {}
        self._clock = clock
        self._counted_at = clock()
        self._write = write
        self.count_seconds = count_seconds

    def record(self, *, agent: str, tool: str, capability: str, environment: str, verdict: str, reason: str) -> None:
        key = (agent.lower(), tool.lower(), verdict)
        now = timezone.now()
        with self._lock:
            first = key not in self._written
            if first:
                if len(self._written) >= MAX_KEYS:
                    self._written.clear()
                self._written.add(key)
            elif (repeats := self._repeats.get(key)) is None:
                self._repeats[key] = _Repeats(now, capability, environment, reason)
            else:
                repeats.count += 1
                repeats.last_seen, repeats.capability, repeats.environment = now, capability, environment
            due = self._take(force=False)
        if first:
            self._write([DeniedCalls(*key, capability, environment, reason, 1, now, now)])
        if due:
            self._write(due)

    def flush(self) -> None:
        """Write every counted repeat now (at exit, and in tests)."""
        with self._lock:
            due = self._take(force=True)
        if due:
            self._write(due)

    def forget(self) -> None:
        """Drop what this process knows and has counted (tests: each starts on an empty database)."""
        with self._lock:
            self._written.clear()
            self._repeats, self._counted_at = {}, self._clock()

    def _take(self, *, force: bool) -> list[DeniedCalls]:
        if not self._repeats or (not force and self._clock() - self._counted_at < self.count_seconds):
            return []
        taken, self._repeats, self._counted_at = self._repeats, {}, self._clock()
        return [
            DeniedCalls(*key, r.capability, r.environment, r.reason, r.count, r.first_seen, r.last_seen)
            for key, r in taken.items()
        ]


denied_checks = DeniedChecks()


@atexit.register
def _count_before_exit() -> None:
    try:
        denied_checks.flush()
    except Exception:
        logger.warning("could not count the last denied grant checks into their findings", exc_info=True)
