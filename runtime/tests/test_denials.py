"""Denied grant checks: the first of each (agent, tool, verdict) opens its finding at once; repeats are counted in
memory and written together, so the count is exact and no check waits on the finding's row."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Any

import pytest
from django.db import transaction

from runtime.denials import DeniedChecks
from runtime.findings import DeniedCalls
from runtime.models import Finding


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def deny(counter: DeniedChecks, agent: str = "billing-bot", capability: str = "delete_repo", **extra: Any) -> None:
    facts = {"tool": "github", "environment": "production", "verdict": "capability_not_granted", "reason": "no"}
    counter.record(agent=agent, capability=capability, **{**facts, **extra})


def test_it_opens_the_finding_at_the_first_denial_and_counts_repeats_after_the_interval(catalog_setup: Any) -> None:
    clock = Clock()
    counter = DeniedChecks(count_seconds=5, clock=clock)
    deny(counter)
    finding = Finding.objects.get()
    assert (finding.kind, finding.count, finding.owner_team) == ("capability_not_granted", 1, "payments")
    for _ in range(3):
        deny(counter)
    assert Finding.objects.get().count == 1  # counted in memory within the interval
    clock.now = 5.0
    deny(counter, capability="create_repo")  # the first denial after the interval writes what was counted
    finding = Finding.objects.get()
    assert (finding.count, finding.capability) == (5, "delete_repo")  # the detail of the denial that opened it
    assert finding.last_seen >= finding.first_seen


def test_a_flush_writes_every_counted_repeat_and_opens_a_finding_resolved_meanwhile(catalog_setup: Any) -> None:
    counter = DeniedChecks(count_seconds=60, clock=Clock())
    deny(counter)
    deny(counter, agent="ghost")
    Finding.objects.filter(agent_key="billing-bot").update(state=Finding.State.RESOLVED)
    deny(counter)
    deny(counter)
    deny(counter, agent="ghost")
    deny(counter, agent="ghost", verdict="grant_expired")  # a first, written at once: the same finding
    deny(counter, agent="ghost", verdict="grant_expired")
    counter.flush()
    open_findings = {(f.agent_key, f.kind): f.count for f in Finding.objects.filter(state=Finding.State.OPEN)}
    assert open_findings == {("billing-bot", "capability_not_granted"): 2, ("ghost", "unknown_agent"): 4}
    counter.flush()  # nothing left: nothing counted twice
    assert Finding.objects.get(agent_key="ghost").count == 4


def test_no_denial_is_lost_or_counted_twice_across_threads() -> None:
    writes: list[tuple[str, int]] = []
    lock = threading.Lock()

    def write(denied: Iterable[DeniedCalls]) -> None:
        with lock:
            writes.extend((calls.agent, calls.count) for calls in denied)

    clock = Clock()
    counter = DeniedChecks(count_seconds=1, clock=clock, write=write)

    def gateway(thread: int) -> None:
        for i in range(500):
            if thread == 0 and i % 100 == 0:
                clock.now += 1  # the interval passes now and then while others count
            deny(counter, agent=f"agent-{i % 7}")

    threads = [threading.Thread(target=gateway, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counter.flush()
    totals: dict[str, int] = {}
    for agent, count in writes:
        totals[agent] = totals.get(agent, 0) + count
    assert sum(totals.values()) == 8 * 500
    assert totals == {f"agent-{n}": sum(1 for t in range(8) for i in range(500) if i % 7 == n) for n in range(7)}


@pytest.mark.django_db
def test_repeats_of_a_denial_whose_first_write_was_rolled_back_still_open_the_finding() -> None:
    counter = DeniedChecks(count_seconds=60, clock=Clock())
    with contextlib.suppress(RuntimeError), transaction.atomic():
        deny(counter, agent="ghost")  # written at once, then rolled back with the request that saw it
        raise RuntimeError
    deny(counter, agent="ghost")  # the process believes it wrote the first: this one is counted
    assert not Finding.objects.exists()
    counter.flush()
    assert Finding.objects.get().count == 1
