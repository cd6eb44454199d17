"""The grant index the call-time check answers from: per web process, (agent, tool) -> the pair's grant facts.

Kept current across processes by one number in the database (GrantIndexGeneration, id 1) that every grant change
sets anew in its own transaction (agents_api.receivers). A process reads the number (one primary-key lookup) at most
every GENERATION_MAX_AGE seconds and, when it changed, drops what it had: a revoke committed in one worker is
answered by every other within 50 ms, and by the next check in its own process (the receiver expires the local
index). Pairs are loaded on first use (one indexed query) rather than all at start, so a process only holds the pairs
it is asked about, unknown names included (adding or deleting an agent or tool also sets the generation). Expiry is
not in the index: the rule compares `expires_at` with the time of each call.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from agents_api.models import GrantIndexGeneration
from catalog.grant_rules import GrantFacts
from catalog.models import Agent, Tool, ToolGrant

# Past this many pairs a process starts an empty map rather than grow without bound.
MAX_PAIRS = 100_000
# A process reads the generation at most this often (seconds): a change made elsewhere is answered within it. Read on
# every check instead, each check made two database round trips (the read and Django's connection health check):
# 3.1 ms of CPU and 11 ms wall per check in-process on this shared VM, against 1.2 ms and 3.5 ms without.
GENERATION_MAX_AGE = 0.05
_ROW = 1


def generation_bump() -> None:
    """Move the generation on; call inside the transaction that changes grants, so both commit together.

    A random value rather than a count: a rolled-back change takes its count back, and the next change would
    reuse it, so a process that read the rolled-back number (the same connection in tests) would keep a stale map.
    """
    generation = secrets.randbits(62)
    if not GrantIndexGeneration.objects.filter(pk=_ROW).update(generation=generation):
        GrantIndexGeneration.objects.get_or_create(pk=_ROW, defaults={"generation": generation})


def generation_read() -> int:
    generation = GrantIndexGeneration.objects.filter(pk=_ROW).values_list("generation", flat=True).first()
    return generation or 0


@dataclass(frozen=True, slots=True)
class PairLookup:
    """The grants of one (agent, tool) pair; `missing` names what the catalog does not know, if anything."""

    grants: tuple[GrantFacts, ...]
    missing: str = ""  # "", "agent", "tool" or "agent and tool"


def _load(agent: str, tool: str) -> PairLookup:
    rows = ToolGrant.objects.filter(agent__name=agent, tool__name=tool).values_list(
        "pk", "environment", "status", "capability_names", "expires_at"
    )
    grants = tuple(
        GrantFacts(
            grant_id=pk,
            environment=environment,
            status=status,
            capability_names=tuple(capabilities or ()),
            expires_at=expires_at,
        )
        for pk, environment, status, capabilities, expires_at in rows
    )
    if grants:
        return PairLookup(grants)
    missing = []
    if not Agent.objects.filter(name=agent).exists():
        missing.append("agent")
    if not Tool.objects.filter(name=tool).exists():
        missing.append("tool")
    return PairLookup((), " and ".join(missing))


class GrantIndex:
    """Thread-safe: gunicorn's threads share one index per process."""

    def __init__(self, *, max_pairs: int = MAX_PAIRS, max_age: float = GENERATION_MAX_AGE) -> None:
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # held by the one thread reading the generation
        self._expirations = 0  # expire() calls so far: a read that began before one must not count as current
        self._generation: int | None = None
        self._pairs: dict[tuple[str, str], PairLookup] = {}
        self._read_at = float("-inf")
        self.max_pairs = max_pairs
        self.max_age = max_age

    def expire(self) -> None:
        """Read the generation again at the next lookup (this process changed a grant)."""
        with self._lock:
            self._expirations += 1
            self._read_at = float("-inf")

    def _current_pairs(self) -> dict[tuple[str, str], PairLookup]:
        now = time.monotonic()
        if now - self._read_at < self.max_age:
            return self._pairs
        # One thread reads; the others answer from the map it is checking, as they did a moment before. Without this
        # every thread that came in during the read's round trip read too: 230 reads/s instead of 60 for 3 workers
        # of 4 threads at 8 clients.
        if not self._reading.acquire(blocking=False):
            if self._read_at != float("-inf"):
                return self._pairs
            self._reading.acquire()  # expired by a change in this process: wait for the read that follows it
        try:
            with self._lock:
                expirations = self._expirations
            generation = generation_read()
            with self._lock:
                if self._expirations == expirations:  # no change in this process since the read began
                    self._read_at = now
                if generation != self._generation or len(self._pairs) >= self.max_pairs:
                    self._generation, self._pairs = generation, {}
                return self._pairs
        finally:
            self._reading.release()

    def lookup(self, agent: str, tool: str) -> PairLookup:
        # The map is taken before the pair is loaded: a load that races with a grant change lands in a map
        # already replaced, never in the new one, so the new map holds nothing older than its generation.
        pairs = self._current_pairs()
        key = (agent, tool)
        found = pairs.get(key)
        if found is None:
            found = _load(agent, tool)
            pairs[key] = found
        return found


grant_index = GrantIndex()
