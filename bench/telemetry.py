"""`PORTAL_MODE=test .venv/bin/python -m bench.telemetry`: telemetry ingest and the KPI page on PostgreSQL.

1. Throughput: gunicorn (gthread) on loopback, client threads POST pre-built OTLP protobuf batches (gzip) of 500
   spans to /v1/traces for a while; spans/s acknowledged (200), 429s (retried), CPU per 1,000 spans by process
   tree (gunicorn, PostgreSQL, the load generator).
2. Where ingest CPU goes: one process, the phases of ingest timed over many batches (decode, attribution, catalog
   reads, grant rule + grouping, database writes).
3. Finding latency: during load, a batch with an ungranted call; time until GET /api/v1/findings/ shows it.
4. KPI page: 30 days of aggregates for 1,000 agents, p95 of GET /runtime/kpis/.
Not a timed test; prints its figures. BENCH_DATABASE_URL uses an existing (empty) database instead of a throwaway.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench.services import HostSteal, cpu_seconds, free_port, percentile, postgres, setup_django

ROOT = Path(__file__).resolve().parent.parent
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
AGENTS, TOOLS = 50, 10
DASHBOARD_AGENTS, DASHBOARD_DAYS = 1000, 30


def _catalog() -> tuple[str, list[str]]:
    """Agents, MCP tools with capabilities and grants (some missing, so findings happen); a telemetry token."""
    from django.contrib.auth import get_user_model

    from catalog import services
    from catalog.models import ToolGrant
    from catalog.teams import team_create
    from portal.tokens import token_issue

    user = get_user_model().objects.create_user("bench-otel", email="otel@example.com", password="x" * 12)
    team_create(name="bench")
    tools = []
    for t in range(TOOLS):
        tool = services.tool_create(
            actor=None,
            data={"name": f"tool-{t}", "owner": "bench", "capabilities": [{"name": f"op{c}"} for c in range(4)]},
            check_permission=False,
        )
        tools.append(tool)
    for a in range(AGENTS):
        agent = services.agent_create(actor=None, data={"name": f"agent-{a}", "owner": "bench"}, check_permission=False)
        for tool in tools[a % 3 : a % 3 + 3]:
            grant, _ = services.grant_request(actor=None, agent=agent, tool=tool)
            ToolGrant.objects.filter(pk=grant.pk).update(status="approved")
    secret = token_issue(issued_by=user, name="bench", scopes=["telemetry", "read"], expires_in_days=2).secret
    return secret, [tool.name for tool in tools]


def _batches(tool_names: list[str], count: int) -> list[bytes]:
    from runtime.tests.otlp_builders import as_protobuf

    rng = random.Random(1)  # a fixed mix, not security
    batches = []
    for _ in range(count):
        spans = []
        for _ in range(BATCH):
            agent = rng.randrange(AGENTS)
            if rng.random() < 0.2:
                spans.append(
                    {
                        "attributes": {
                            "gen_ai.operation.name": "chat",
                            "gen_ai.agent.name": f"agent-{agent}",
                            "gen_ai.request.model": "gpt-4o",
                            "gen_ai.usage.input_tokens": 1200,
                            "gen_ai.usage.output_tokens": 300,
                        },
                        "duration_ms": rng.uniform(200, 2000),
                    }
                )
                continue
            granted = tool_names[agent % 3 : agent % 3 + 3]
            tool = rng.choice(granted) if rng.random() < 0.98 else rng.choice(tool_names)
            attributes = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.agent.name": f"agent-{agent}",
                "gen_ai.tool.name": f"op{rng.randrange(4)}",
                "mcp.server.name": tool,
            }
            if rng.random() < 0.02:
                attributes["error.type"] = "TimeoutError"
            spans.append({"attributes": attributes, "duration_ms": rng.lognormvariate(3.5, 0.7)})
        batches.append(gzip.compress(as_protobuf(spans), compresslevel=5))
    return batches


def _gunicorn(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORTAL_MODE": "test",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
        "RUNTIME_INGEST_MAX_INFLIGHT": "4",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--access-logfile",
            "/dev/null",
            "--name",
            "bench-telemetry-web",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


class Load:
    def __init__(self, port: int, secret: str, batches: list[bytes]) -> None:
        self.port, self.secret, self.batches = port, secret, batches
        self.acknowledged = self.refused = self.errors = 0
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def post(self, connection: http.client.HTTPConnection, body: bytes) -> int:
        headers = {
            "Authorization": f"Bearer {self.secret}",
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        }
        connection.request("POST", "/v1/traces", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    def client(self, index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        number = index
        while not self.stop.is_set():
            body = self.batches[number % len(self.batches)]
            number += CLIENTS
            started = time.perf_counter()
            status = self.post(connection, body)
            elapsed = time.perf_counter() - started
            with self.lock:
                if status == 200:
                    self.acknowledged += BATCH
                    self.latencies.append(elapsed * 1000)
                elif status == 429:
                    self.refused += 1
                else:
                    self.errors += 1
            if status == 429:
                time.sleep(0.05)


def _finding_latency(port: int, secret: str) -> float:
    from runtime.tests.otlp_builders import as_json

    agent = f"shadow-{random.randrange(10**9)}"
    body = as_json(
        [
            {
                "attributes": {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.agent.name": agent,
                    "gen_ai.tool.name": "x",
                    "mcp.server.name": "tool-1",
                }
            }
        ]
    )
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    connection.request("POST", "/v1/traces", body=body, headers=headers)
    status = connection.getresponse()
    status.read()
    while time.perf_counter() - started < 30:
        connection.request("GET", f"/api/v1/findings/?agent={agent}", headers={"Authorization": f"Bearer {secret}"})
        response = connection.getresponse()
        payload = json.loads(response.read())
        if payload.get("results"):
            return time.perf_counter() - started
        time.sleep(0.05)
    return float("inf")


def _throughput(database_url: str, secret: str, tool_names: list[str]) -> None:
    batches = _batches(tool_names, 24)
    port = free_port()
    server = _gunicorn(database_url, port)
    db_marker = f"-p {urlsplit(database_url).port} " if not os.environ.get("BENCH_DATABASE_URL") else " postgres: "
    groups = {"gunicorn": "bench-telemetry-web", "postgres": db_marker, "load generator": "self"}
    try:
        load = Load(port, secret, batches)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in batches[: WORKERS * 2]:  # warm-up: each worker loads its code and plans; not measured
            load.post(connection, body)
        threads = [threading.Thread(target=load.client, args=(i,), daemon=True) for i in range(CLIENTS)]
        steal = HostSteal()
        cpu_before = cpu_seconds(groups)
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(SECONDS / 2)
        finding_seconds = _finding_latency(port, secret)
        time.sleep(SECONDS / 2)
        load.stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu = {group: spent - cpu_before[group] for group, spent in cpu_seconds(groups).items()}
        rate = load.acknowledged / elapsed
        print(
            f"ingest: {load.acknowledged} spans in {elapsed:.1f} s = {rate:,.0f} spans/s acknowledged "
            f"(batches of {BATCH}, {CLIENTS} clients, {WORKERS} gunicorn workers x 4 threads); "
            f"429 answers {load.refused}, other errors {load.errors}; batch p50 {statistics.median(load.latencies):.0f} ms, "
            f"p95 {percentile(load.latencies, 0.95):.0f} ms (target 5,000 spans/s: {'OK' if rate >= 5000 else 'BELOW'})"
            f"{steal.text()}",
            flush=True,
        )
        per_thousand = {group: 1000 * seconds / max(load.acknowledged, 1) * 1000 for group, seconds in cpu.items()}
        print(
            "CPU per 1,000 spans: " + ", ".join(f"{group} {ms:.1f} ms" for group, ms in per_thousand.items()),
            flush=True,
        )
        print(
            f"finding visible through the API {finding_seconds * 1000:.0f} ms after its span was sent, under load "
            f"(target 5 s: {'OK' if finding_seconds <= 5 else 'OVER'})",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def _phases(tool_names: list[str]) -> None:
    """Where one process's ingest time goes, per 1,000 spans (thread CPU time, so other load does not count)."""
    from django.db import transaction

    from catalog.bulk import copy_rows
    from runtime import ingest as ingest_module
    from runtime import otlp
    from runtime.attribution import is_genai, observe
    from runtime.models import SpanRecord
    from runtime.resolution import catalog_view

    batches = [gzip.decompress(body) for body in _batches(tool_names, 10)]
    totals = dict.fromkeys(("decode", "attribution", "catalog reads", "grant rule + grouping", "database writes"), 0.0)
    clock = time.thread_time
    spans_done = 0
    for body in batches * 2:
        mark = clock()
        spans = otlp.decode(body, otlp.PROTOBUF, max_spans=10_000)
        totals["decode"] += clock() - mark
        mark = clock()
        observations = [observe(span) for span in spans if is_genai(span)]
        totals["attribution"] += clock() - mark
        mark = clock()
        view = catalog_view(observations)
        totals["catalog reads"] += clock() - mark
        mark = clock()
        batch = ingest_module._Batch(view, None, None)
        for observation in observations:
            batch.take(observation)
        totals["grant rule + grouping"] += clock() - mark
        mark = clock()
        with transaction.atomic():
            copy_rows(SpanRecord, ingest_module.SPAN_COLUMNS, batch.spans)
            ingest_module._write_usage(batch)
        totals["database writes"] += clock() - mark
        spans_done += len(spans)
    print(
        "in-process ingest CPU per 1,000 spans: "
        + ", ".join(f"{phase} {1000 * seconds / spans_done * 1000:.1f} ms" for phase, seconds in totals.items())
        + f"; total {1000 * sum(totals.values()) / spans_done * 1000:.1f} ms (Python side; the database's own time is in the PostgreSQL figure above)",
        flush=True,
    )


def _dashboard() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from runtime.histogram import BUCKET_FIELDS
    from runtime.kpis import kpis_snapshot
    from runtime.models import Finding, KpiSnapshot, ModelUsageDaily, ToolUsageDaily

    today = timezone.now().date()
    rng = random.Random(2)  # synthetic data, not security
    tool_rows, model_rows = [], []
    for agent in range(DASHBOARD_AGENTS):
        for offset in range(DASHBOARD_DAYS):
            day = today - timedelta(days=offset)
            for tool in range(3):
                calls = rng.randint(10, 500)
                tool_rows.append(
                    ToolUsageDaily(
                        day=day,
                        agent_key=f"dash-agent-{agent}",
                        tool_key=f"tool-{(agent + tool) % TOOLS}",
                        capability="op0",
                        environment="production",
                        calls=calls,
                        errors=calls // 50,
                        duration_ms_total=calls * 40.0,
                        last_seen=timezone.now(),
                        **{BUCKET_FIELDS[3]: calls},
                    )
                )
            model_rows.append(
                ModelUsageDaily(
                    day=day,
                    agent_key=f"dash-agent-{agent}",
                    model="gpt-4o",
                    environment="production",
                    calls=50,
                    input_tokens=50_000,
                    output_tokens=9_000,
                )
            )
    ToolUsageDaily.objects.bulk_create(tool_rows, batch_size=5000)
    ModelUsageDaily.objects.bulk_create(model_rows, batch_size=5000)
    now = timezone.now()
    Finding.objects.bulk_create(
        [
            Finding(
                agent_key=f"dash-agent-{i}",
                tool_key="tool-1",
                kind="no_grant",
                count=3,
                first_seen=now - timedelta(days=i % 30),
                last_seen=now,
                created_at=now - timedelta(days=i % 30),
            )
            for i in range(300)
        ]
    )
    kpis_snapshot()
    current = list(KpiSnapshot.objects.filter(day=today))
    KpiSnapshot.objects.bulk_create(
        [
            KpiSnapshot(day=today - timedelta(days=d), figure=r.figure, label=r.label, value=r.value)
            for d in range(1, DASHBOARD_DAYS)
            for r in current
        ],
        ignore_conflicts=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    user = get_user_model().objects.create_user("bench-viewer", email="v@example.com", password="x" * 12)
    client = Client()
    client.force_login(user)
    samples = []
    steal = HostSteal()
    for number in range(60):
        started = time.perf_counter()
        response = client.get("/runtime/kpis/")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.status_code
        if number >= 10:
            samples.append(elapsed)
    p95 = percentile(samples, 0.95)
    print(
        f"KPI page with {len(tool_rows) + len(model_rows):,} daily rows ({DASHBOARD_AGENTS} agents x {DASHBOARD_DAYS} days): "
        f"p50 {statistics.median(samples):.1f} ms, p95 {p95:.1f} ms (target 100 ms: {'OK' if p95 <= 100 else 'OVER'}){steal.text()}",
        flush=True,
    )


def main() -> None:
    with postgres() as database_url:
        setup_django(database_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"machine: {os.cpu_count()} cores; PostgreSQL on loopback", flush=True)
        secret, tool_names = _catalog()
        _throughput(database_url, secret, tool_names)
        _phases(tool_names)
        _dashboard()


if __name__ == "__main__":
    main()
