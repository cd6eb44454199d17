"""Approvals throughput with a real worker on Redis and PostgreSQL, the latency of a workflow at a fixed offered
load, and the reviewer's decision latency.

1. 1,000 low-tier MCP tool onboardings (under a policy without attestation) that auto-approve after their checks,
   which call a local MCP server (initialize + tools/list), submitted flat out from BENCH_SUBMIT_THREADS threads
   (4 by default; concurrent users, each request its own transaction on its thread's connection, so audited writes
   of unrelated requests meet as they do in production): workflows per second, CPU per workflow (with the sealing
   of its audit events, where a tree seals them after commit), the submitters' wall time per request, and checks
   started -> approved p95: the time a workflow takes once the worker takes it up. Its
   submit -> approved times are printed but not compared: they measure the backlog, which grows with the
   submitter's speed (a faster submitter queues more requests in front of the same worker).
2. The same workflow submitted at one fixed offered rate (BENCH_SUBMIT_RATE per second, 20 by default, which both
   the old and the new tree keep up with on 2 cores; BENCH_PACED_WORKFLOWS of them, 400 by default): submit ->
   approved p50 and p95. This is the latency figure to compare between trees: each gets the same load.
3. With 10,000 open requests, each about a tool of its own that waits for review, a reviewer's decision through
   the queue's inline form (htmx row update): p95 server time over 200 decisions.

Run: `python -m bench.approvals` (throwaway PostgreSQL and Redis unless BENCH_DATABASE_URL / BENCH_BROKER_URL).
BENCH_WORKFLOWS, BENCH_PACED_WORKFLOWS, BENCH_SUBMIT_RATE, BENCH_OPEN_REQUESTS, BENCH_DECISIONS,
BENCH_WORKER_CONCURRENCY, BENCH_SUBMIT_THREADS adjust it.

Old and new side by side: `python -m bench.approvals --old /work/wt/old` measures the code checked out at that path
and this tree with this same script, alternately (BENCH_ROUNDS rounds, 1 by default: old, new, old, new, ...), each
run in its own process with its own throwaway PostgreSQL and Redis and that tree's .venv, then prints every run's
figures and the change of the medians. The script adapts to the names the old tree has (`approvals.services` vs
`approvals.submitting`, ...); both trees run the same workflow under the same policy.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run by its path (--old): bench/approvals.py must not shadow the approvals app

from bench.services import HostSteal, cpu_seconds, percentile, postgres, redis, setup_django

WORKFLOWS = int(os.environ.get("BENCH_WORKFLOWS", "1000"))
OPEN_REQUESTS = int(os.environ.get("BENCH_OPEN_REQUESTS", "10000"))
DECISIONS = int(os.environ.get("BENCH_DECISIONS", "200"))
CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "6"))
PACED_WORKFLOWS = int(os.environ.get("BENCH_PACED_WORKFLOWS", "400"))
SUBMIT_RATE = float(os.environ.get("BENCH_SUBMIT_RATE", "20"))
SUBMIT_THREADS = int(os.environ.get("BENCH_SUBMIT_THREADS", "4"))
# The tree measured: this script's own, or the one `--old` runs it in (BENCH_TREE).
ROOT = Path(os.environ.get("BENCH_TREE") or Path(__file__).resolve().parents[1])
FIGURES: dict[str, float] = {}


def _start_worker(database_url: str, broker_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, DATABASE_URL=database_url, CELERY_BROKER_URL=broker_url, PORTAL_MODE="test",
               SSRF_ALLOWLIST="127.0.0.1", LOG_LEVEL="WARNING", EMAIL_BACKEND="memory")  # fmt: skip
    env.pop("PYTEST_VERSION", None)
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=prefork", f"--concurrency={CONCURRENCY}",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO", "-n", "bench@%h"],
        cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return process


def _submitter() -> Any:
    """The tree's request_submit (approvals.submitting today; approvals.services in older trees)."""
    try:
        from approvals.submitting import request_submit
    except ImportError:  # the old tree
        from approvals.services import request_submit
    return request_submit


def _tool_entry_values() -> Any:
    try:
        from catalog.search_index import tool_entry_values
    except ImportError:  # the old tree
        from catalog.services import tool_entry_values
    return tool_entry_values


def _make_tools(server_url: str, count: int) -> list[Any]:
    from catalog import services as catalog

    template = catalog.tool_create(
        actor=None,
        data={"name": "bench-mcp-0", "owner": "bench", "kind": "mcp_server", "transport": "streamable_http",
              "endpoint_url": server_url, "version": "1.0.0", "description": "Status, read-only.", "data_class": "public",
              "reach": "closed", "credential_scope": "none",
              "capabilities": [{"name": "read_status", "read_only": True, "open_world": False, "idempotent": True}]},
    )  # fmt: skip
    template = catalog.tool_attest_annotations(tool=template)
    return [template, *_clone_tools(template, "bench-mcp", range(1, count))]


def _clone_tools(template: Any, prefix: str, numbers: range, **values: Any) -> list[Any]:
    """Copies of `template` named prefix-<number> (with `values` set), each with its capability and its search row
    as every catalogued tool has."""
    from catalog.bulk import insert_instances
    from catalog.models import Capability, CatalogEntry, Tool

    stored = Tool.objects.get(pk=template.pk)
    fields = {f.attname: getattr(stored, f.attname) for f in Tool._meta.concrete_fields if not f.primary_key}
    tools = [Tool(**{**fields, "name": f"{prefix}-{i}", **values}) for i in numbers]
    insert_instances(Tool, tools)
    insert_instances(
        Capability,
        [Capability(tool=t, name="read_status", read_only=True, open_world=False, idempotent=True) for t in tools],
    )
    entry_values = _tool_entry_values()
    insert_instances(
        CatalogEntry,
        [CatalogEntry(kind="tool", entity_id=t.pk, **entry_values(t, ["read_status"])) for t in tools],
    )
    return tools


def _wait_until_decided(request_ids: list[int], timeout: float = 900) -> None:
    from approvals.models import ApprovalRequest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_count = (
            ApprovalRequest.objects.filter(pk__in=request_ids)
            .exclude(state__in=["approved", "rejected", "changes_requested"])
            .count()
        )
        if open_count == 0:
            return
        time.sleep(0.5)


def _latencies(request_ids: list[int]) -> tuple[list[float], int, float]:
    """submit -> approved seconds of the approved requests, how many were not approved, and the rate at which
    they were approved (from the first submit to the last approval)."""
    from approvals.models import ApprovalRequest

    rows = list(ApprovalRequest.objects.filter(pk__in=request_ids).values_list("state", "submitted_at", "decided_at"))
    approved = [(s, d) for state, s, d in rows if state == "approved" and d]
    first_submit = min(s for _, s, _ in rows)
    last_decided = max(d for _, d in approved) if approved else first_submit
    rate = len(approved) / max((last_decided - first_submit).total_seconds(), 1e-9)
    return [(d - s).total_seconds() for s, d in approved], len(rows) - len(approved), rate


def _service_times(request_ids: list[int]) -> list[float]:
    """checks started -> approved seconds of the approved requests: from the first claim of the request's checks
    by the worker to its approval, the time the workflow itself took once the worker took it up (its wait in the
    queue left out)."""
    from django.db.models import Min

    from approvals.models import ApprovalRequest

    rows = (
        ApprovalRequest.objects.filter(pk__in=request_ids, state="approved")
        .annotate(checks_started=Min("checks__started_at"))
        .values_list("checks_started", "decided_at")
    )
    return [(decided - started).total_seconds() for started, decided in rows if started and decided]


def _seal_audit_chain() -> float:
    """Chain the phase's audit events where the tree seals them after commit (a beat task in production, so the
    work of every workflow, as the old tree's chaining at write time was): the CPU seconds it took this process.
    The old tree chains each event when it writes it and has nothing to seal."""
    from datetime import timedelta

    try:
        from portal.audit import audit_seal
    except ImportError:  # the old tree
        return 0.0
    cpu_started = time.process_time()
    audit_seal(grace=timedelta(0))
    return time.process_time() - cpu_started


def _throughput(database_url: str, broker_url: str) -> None:
    from approvals.models import ApprovalPolicy

    request_submit = _submitter()
    owner = _owner()
    with _mcp_server_process() as server_url:
        tools = _make_tools(server_url, WORKFLOWS + PACED_WORKFLOWS)
        flat_out, paced = tools[:WORKFLOWS], tools[WORKFLOWS:]
        # The requester cannot attest their own request; the bench measures the automatic path of checks alone
        # (the same policy for every tree).
        ApprovalPolicy.objects.filter(tier="low").update(requires_attestation=False)
        print(
            f"{len(tools)} low-tier MCP tools ready (tier {tools[0].risk_tier}); worker concurrency {CONCURRENCY}",
            flush=True,
        )

        worker = _start_worker(database_url, broker_url, Path(tempfile.gettempdir()) / "bench-approvals-worker.log")
        groups = {
            "submitter": "self",
            "worker": "celery -A portal worker",
            "PostgreSQL": _postgres_marker(database_url),
            "Redis": f":{urlsplit(broker_url).port}",
            "MCP server": "bench.mcp_server",
        }
        cpu_before = cpu_seconds(groups)
        steal = HostSteal()
        try:
            started = time.perf_counter()
            flat_ids = _submit_from_threads(flat_out, owner, request_submit)
            submitted = time.perf_counter() - started
            print(
                f"submitted {WORKFLOWS} requests from {SUBMIT_THREADS} threads in {submitted:.1f} s "
                f"({WORKFLOWS / submitted:.0f}/s)",
                flush=True,
            )
            _wait_until_decided(flat_ids)
            elapsed = time.perf_counter() - started
            sealing = _seal_audit_chain()  # counted in the submitter's CPU below (this process)
            cpu_used = {group: spent - cpu_before[group] for group, spent in cpu_seconds(groups).items()}
            flat_steal = steal.text()
            paced_ids, paced_submit_s, paced_steal = _paced(paced, owner, request_submit)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    latencies, others, rate = _latencies(flat_ids)
    service = _service_times(flat_ids)
    verdict = "OK" if rate >= 30 else "BELOW FLOOR"
    print(
        f"workflows (flat out): {len(latencies)} approved, {others} not approved, in {elapsed:.1f} s wall -> "
        f"{rate:.1f} workflows/s (floor 30/s: {verdict}); checks started->approved p50 "
        f"{statistics.median(service) * 1000:.0f} ms, p95 {percentile(service, 0.95) * 1000:.0f} ms; submit->approved under the "
        f"backlog (not compared: it grows with the submitter's speed) p50 {statistics.median(latencies):.2f} s, "
        f"p95 {percentile(latencies, 0.95):.2f} s{flat_steal}",
        flush=True,
    )
    per_workflow = {group: spent * 1000 / max(len(latencies), 1) for group, spent in cpu_used.items()}
    total = sum(per_workflow.values())
    print(
        f"CPU per workflow {total:.0f} ms ("
        + ", ".join(f"{group} {spent:.0f}" for group, spent in per_workflow.items())
        + f"; audit sealing {sealing * 1000 / max(len(latencies), 1):.1f} of the submitter's)"
        + f": at most {os.cpu_count() or 1} cores / {total:.0f} ms = {(os.cpu_count() or 1) * 1000 / total:.0f} workflows/s "
        "if this machine did nothing else",
        flush=True,
    )
    paced_latencies, paced_others, _ = _latencies(paced_ids)
    offered = len(paced_ids) / max(paced_submit_s, 1e-9)
    kept_up = "kept up" if offered >= SUBMIT_RATE * 0.95 else f"FELL BEHIND the offered {SUBMIT_RATE:g}/s"
    print(
        f"workflows at a fixed offered load of {SUBMIT_RATE:g}/s ({len(paced_ids)} submitted at {offered:.1f}/s, "
        f"submitter {kept_up}): {len(paced_latencies)} approved, {paced_others} not approved; submit->approved p50 "
        f"{statistics.median(paced_latencies) * 1000:.0f} ms, p95 {percentile(paced_latencies, 0.95) * 1000:.0f} ms"
        f"{paced_steal}",
        flush=True,
    )
    FIGURES.update(
        {
            "workflows/s (flat out)": rate,
            "CPU per workflow ms": total,
            f"submit ms per request (flat out, {SUBMIT_THREADS} threads)": submitted * 1000 / WORKFLOWS,
            "checks started->approved p95 ms (flat out)": percentile(service, 0.95) * 1000,
            f"submit->approved p50 ms (at {SUBMIT_RATE:g}/s)": statistics.median(paced_latencies) * 1000,
            f"submit->approved p95 ms (at {SUBMIT_RATE:g}/s)": percentile(paced_latencies, 0.95) * 1000,
        }
    )


def _submit_from_threads(tools: list[Any], owner: Any, request_submit: Any) -> list[int]:
    """Each tool's request, submitted flat out from SUBMIT_THREADS threads as the API and the UI call it (its own
    transaction, checks sent on commit), each thread on its own database connection: the request ids."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def submit_share(share: list[Any]) -> list[int]:
        try:
            return [request_submit(actor=owner, kind="tool_onboarding", tool=tool).pk for tool in share]
        finally:
            connection.close()  # this thread's connection

    shares = [tools[number::SUBMIT_THREADS] for number in range(SUBMIT_THREADS)]
    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        return [request_id for ids in pool.map(submit_share, shares) for request_id in ids]


def _paced(tools: list[Any], owner: Any, request_submit: Any) -> tuple[list[int], float, str]:
    """Submit one request every 1/SUBMIT_RATE seconds (on a schedule: a late submit does not push the later ones
    back) and wait until all are decided: the ids, the seconds the submitting took and the host steal."""
    steal = HostSteal()
    ids: list[int] = []
    started = time.perf_counter()
    for number, tool in enumerate(tools):
        delay = started + number / SUBMIT_RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ids.append(request_submit(actor=owner, kind="tool_onboarding", tool=tool).pk)
    took = time.perf_counter() - started
    _wait_until_decided(ids)
    return ids, took, steal.text()


def _postgres_marker(database_url: str) -> str:
    """The throwaway server is all ours (its postmaster's tree); on a shared server (BENCH_DATABASE_URL) only
    the backends of the bench's database count, not other sessions' work."""
    parts = urlsplit(database_url)
    if os.environ.get("BENCH_DATABASE_URL"):
        return f" {parts.path.lstrip('/')} "
    return f"-p {parts.port} "


@contextlib.contextmanager
def _mcp_server_process() -> Iterator[str]:
    """The MCP server the checks call runs in its own process, as a real one would (not in the submitter's
    threads, where it would compete with the submit loop for the GIL)."""
    # It is part of the harness, not of the tree measured: both trees' checks call the same server (this script's
    # tree's; an older tree's test server delayed every answer on a kept-alive connection by 40 ms, Nagle's algorithm).
    harness = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.mcp_server"],
        cwd=harness,
        env={**os.environ, "PYTHONPATH": str(harness)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def _owner() -> Any:
    from django.contrib.auth import get_user_model

    from catalog.models import Team
    from catalog.teams import team_create, team_set_member

    user_model = get_user_model()
    owner = user_model.objects.filter(username="bench-owner").first()
    if owner is None:
        owner = user_model.objects.create_user("bench-owner", email="owner@example.com", password="x" * 12)
        team = Team.objects.filter(name="bench").first() or team_create(name="bench")
        team_set_member(team=team, user=owner, role="maintainer")
    return owner


def _decision_latency() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from approvals.models import ApprovalRequest
    from catalog.bulk import insert_instances
    from catalog.models import Team, Tool
    from portal.roles import ENGINEER, SECURITY_REVIEWER, role_group

    owner = _owner()
    team = Team.objects.get(name="bench")
    reviewer = get_user_model().objects.create_user("bench-reviewer", email="rev@example.com", password="x" * 12)
    reviewer.groups.add(role_group(ENGINEER), role_group(SECURITY_REVIEWER))
    # Each open request is about a tool of its own that waits for review (one open request per subject and kind),
    # whose row the decision form names (subject_ref, the request's subject_key).
    template = Tool.objects.filter(owner=team).order_by("pk").first()
    tools = _clone_tools(template, "bench-review", range(OPEN_REQUESTS), status=Tool.Status.PENDING_REVIEW)
    try:
        from approvals.policies import policy_snapshot
    except ImportError:  # the old tree
        from approvals.services import policy_snapshot
    snapshot = policy_snapshot("medium")
    now = timezone.now()
    # The fingerprint of the facts the reviewer saw, where the tree records one (the old tree has no such field).
    fingerprint = {"facts_fingerprint": "bench"} if hasattr(ApprovalRequest, "facts_fingerprint") else {}
    rows = [
        ApprovalRequest(
            kind="tool_onboarding",
            state="in_review",
            tool=tool,
            subject_key=f"tool:{tool.pk}",
            title=f"bench request {i}",
            requester=owner,
            owning_team=team,
            tier="medium",
            risk=template.risk,
            bound_facts={},
            **fingerprint,
            policy_snapshot=snapshot,
            current_stage=0,
            current_role=SECURITY_REVIEWER,
            due_at=now,
            submitted_at=now,
            created_at=now,
            updated_at=now,
        )
        for i, tool in enumerate(tools)
    ]
    insert_instances(ApprovalRequest, rows)
    # A steady state, as a portal that has had its open requests for a while: statistics current and the previous
    # phase's dead rows vacuumed (otherwise autovacuum starts in the middle of the measurement).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"{ApprovalRequest.objects.filter(state='in_review').count()} open requests", flush=True)
    client = Client()
    client.force_login(reviewer)
    try:
        reverse("approvals:decide", args=[rows[0].pk])
        use_ui = True
    except NoReverseMatch:
        use_ui = False
    samples: list[float] = []
    cpu: list[float] = []
    queries: list[int] = []
    steal = HostSteal()
    warm_up = 10  # the first decisions of a process compile templates and plans; they are not measured
    for number, request in enumerate(rows[: DECISIONS + warm_up]):
        if use_ui:
            url = reverse("approvals:decide", args=[request.pk])
            # The facts fingerprint and the subject the queue row's form carries (empty rows: the bench's requests
            # have no facts; a tree whose form has no subject_ref ignores it).
            payload = {
                "outcome": "approve",
                "comment": "ok",
                "stage_index": 0,
                "subject_ref": request.subject_key,
                **fingerprint,
            }
            headers = {"HTTP_HX_REQUEST": "true"}
        else:
            url = f"/api/v1/approvals/requests/{request.pk}/decide/"
            payload = {
                "outcome": "approve",
                "comment": "ok",
                "stage_index": 0,
                **fingerprint,
            }
            headers = {}
        with CaptureQueriesContext(connection) as captured:
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.post(url, payload, **headers)
            elapsed_ms = (time.perf_counter() - started) * 1000
            cpu_ms = (time.process_time() - cpu_started) * 1000
        if number >= warm_up:
            samples.append(elapsed_ms)
            cpu.append(cpu_ms)
            queries.append(len(captured))
        if response.status_code >= 400:
            raise SystemExit(f"decision failed: {response.status_code} {response.content[:300]!r}")
    p95 = percentile(samples, 0.95)
    FIGURES.update(
        {
            f"decision p50 ms ({OPEN_REQUESTS} open)": statistics.median(samples),
            f"decision p95 ms ({OPEN_REQUESTS} open)": p95,
            "decision CPU ms (in process, p50)": statistics.median(cpu),
            "decision queries": float(max(queries)),
        }
    )
    print(
        f"decision -> updated row ({'htmx queue row' if use_ui else 'API'}), {OPEN_REQUESTS} open: p50 {statistics.median(samples):.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(samples):.1f} ms, CPU in process p50 {statistics.median(cpu):.1f} ms, "
        f"queries {min(queries)}-{max(queries)} (budget p95 50 ms: {'OK' if p95 <= 50 else 'OVER BUDGET'})"
        f"{steal.text()}",
        flush=True,
    )


def measure() -> None:
    """Measure the tree this process runs in (ROOT); the figures also go out as one JSON line for --old."""
    with postgres() as database_url, redis() as broker_url:
        os.environ["SSRF_ALLOWLIST"] = "127.0.0.1"
        os.environ["EMAIL_BACKEND"] = "memory"
        setup_django(database_url, broker_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"machine: {os.cpu_count()} cores; PostgreSQL + Redis on loopback; tree {ROOT}", flush=True)
        _throughput(database_url, broker_url)
        _decision_latency()
    print("FIGURES " + json.dumps(FIGURES), flush=True)


# --- old and new side by side -----------------------------------------------------------------------------------


def _run_tree(tree: Path, name: str) -> dict[str, float]:
    """This script, run in `tree` with that tree's interpreter and code (its own throwaway servers)."""
    from bench.services import figures_of_tree  # the parent's (this tree's) module: the measured tree may not have it

    python = tree / ".venv" / "bin" / "python"
    environment = {**os.environ, "PYTHONPATH": str(tree), "BENCH_TREE": str(tree)}
    command = [str(python if python.exists() else sys.executable), str(Path(__file__).resolve()), "measure"]
    return figures_of_tree(tree, command, environment, name)


def _side_by_side(runs: dict[str, list[dict[str, float]]]) -> None:
    """Every run's figures, then the change of the medians (new against old)."""
    print(f"\n{'figure':<46} {'old runs':>22} {'new runs':>22} {'change':>8}")
    for label in runs["new"][0]:
        old = [run[label] for run in runs["old"] if label in run]
        new = [run[label] for run in runs["new"] if label in run]
        shown = [
            " / ".join(f"{value:.2f}" if value < 10 else f"{value:.1f}" for value in values) or "-"
            for values in (old, new)
        ]
        change = ""
        if old and new and statistics.median(old):
            change = f"{(statistics.median(new) - statistics.median(old)) / statistics.median(old) * 100:+.0f}%"
        print(f"{label:<46} {shown[0]:>22} {shown[1]:>22} {change:>8}")
    print("(workflows/s: higher is better; every other figure: lower is better)")


def main() -> None:
    if "--old" not in sys.argv:
        measure()
        return
    old_tree = Path(sys.argv[sys.argv.index("--old") + 1]).resolve()
    new_tree = Path(__file__).resolve().parents[1]
    rounds = int(os.environ.get("BENCH_ROUNDS", "1"))
    print(f"old {old_tree} and new {new_tree}, alternately, {rounds} round(s)", flush=True)
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for _ in range(rounds):
        runs["old"].append(_run_tree(old_tree, "old"))
        runs["new"].append(_run_tree(new_tree, "new"))
    _side_by_side(runs)


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        measure()
    else:
        main()
