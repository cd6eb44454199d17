"""Concurrent batches on PostgreSQL: counters add up, one open finding per key, no deadlock, nothing lost."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections

from runtime import otlp
from runtime.ingest import ingest
from runtime.models import Finding, SpanRecord, ToolUsageDaily
from runtime.tests.otlp_builders import as_protobuf, tool_call

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks and concurrent upserts"),
]


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_add_up_and_share_one_finding(catalog_setup: Any) -> None:
    server = "io.github.example/github"
    mixed = [tool_call("billing-bot", "create_issue", server=server)] * 30
    mixed += [tool_call("billing-bot", "delete_repo", server=server)] * 10
    mixed += [tool_call(f"shadow-{i}", "create_issue", server=server) for i in range(5)]
    bodies = [otlp.decode(as_protobuf(mixed[i:] + mixed[:i]), otlp.PROTOBUF, max_spans=1000) for i in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(bodies))

    def send(spans: list[Any]) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                ingest(spans=spans, token=None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(spans,)) for spans in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    runs = len(bodies) * 3
    assert SpanRecord.objects.count() == runs * len(mixed)
    counters = {row.capability: row.calls for row in ToolUsageDaily.objects.filter(agent_key="billing-bot")}
    assert counters == {"create_issue": runs * 30, "delete_repo": runs * 10}
    finding = Finding.objects.get(kind="capability_not_granted")
    assert finding.count == runs * 10
    assert Finding.objects.filter(kind="unknown_agent").count() == 5
    assert set(Finding.objects.filter(kind="unknown_agent").values_list("count", flat=True)) == {runs}
    assert connection.vendor == "postgresql"
