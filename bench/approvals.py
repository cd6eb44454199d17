"""Approvals throughput with a real worker on Redis and PostgreSQL, and the reviewer's decision latency.

1. 1,000 low-tier MCP tool onboardings (under a policy without attestation) that auto-approve after their checks, which call a local MCP
   server (initialize + tools/list): workflows per second, p50 and p95 from submit to approved.
2. With 10,000 open requests, a reviewer's decision through the queue's inline form (htmx row update): p95
   server time over 200 decisions.

Run: `python -m bench.approvals` (throwaway PostgreSQL and Redis unless BENCH_DATABASE_URL / BENCH_BROKER_URL).
BENCH_WORKFLOWS, BENCH_OPEN_REQUESTS, BENCH_WORKER_CONCURRENCY adjust it.
"""

from __future__ import annotations

import contextlib
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

from bench.services import HostSteal, cpu_seconds, percentile, postgres, redis, setup_django

WORKFLOWS = int(os.environ.get("BENCH_WORKFLOWS", "1000"))
OPEN_REQUESTS = int(os.environ.get("BENCH_OPEN_REQUESTS", "10000"))
DECISIONS = int(os.environ.get("BENCH_DECISIONS", "200"))
CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "6"))
ROOT = Path(__file__).resolve().parents[1]


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


def _throughput(database_url: str, broker_url: str) -> None:

    from approvals import submitting
    from approvals.models import ApprovalPolicy, ApprovalRequest
    from catalog import search_index
    from catalog import services as catalog
    from catalog.bulk import insert_instances
    from catalog.models import Tool

    owner = _owner()
    with _mcp_server_process() as server_url:
        tools = []
        template = catalog.tool_create(
            actor=None,
            data={"name": "bench-mcp-0", "owner": "bench", "kind": "mcp_server", "transport": "streamable_http",
                  "endpoint_url": server_url, "version": "1.0.0", "description": "Status, read-only.", "data_class": "public",
                  "reach": "closed", "credential_scope": "none",
                  "capabilities": [{"name": "read_status", "read_only": True, "open_world": False, "idempotent": True}]},
        )  # fmt: skip
        template = catalog.tool_attest_annotations(tool=template)
        tools.append(template)
        for i in range(1, WORKFLOWS):
            clone = Tool.objects.get(pk=template.pk)
            clone.pk, clone.id, clone.name = None, None, f"bench-mcp-{i}"
            tools.append(clone)
        insert_instances(Tool, tools[1:])
        from catalog.models import Capability, CatalogEntry

        insert_instances(
            Capability,
            [
                Capability(tool=t, name="read_status", read_only=True, open_world=False, idempotent=True)
                for t in tools[1:]
            ],
        )
        # As every catalogued tool has, a search row each.
        insert_instances(
            CatalogEntry,
            [
                CatalogEntry(kind="tool", entity_id=t.pk, **search_index.tool_entry_values(t, ["read_status"]))
                for t in tools[1:]
            ],
        )
        # The requester cannot attest their own request; the bench measures the automatic path of checks alone.
        ApprovalPolicy.objects.filter(tier="low").update(requires_attestation=False)
        print(
            f"{WORKFLOWS} low-tier MCP tools ready (tier {template.risk_tier}); worker concurrency {CONCURRENCY}",
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
            for tool in tools:  # as the API and the UI call it: its own transaction, checks sent on commit
                submitting.request_submit(actor=owner, kind="tool_onboarding", tool=tool)
            submitted = time.perf_counter() - started
            print(f"submitted {WORKFLOWS} requests in {submitted:.1f} s ({WORKFLOWS / submitted:.0f}/s)", flush=True)
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                open_count = ApprovalRequest.objects.exclude(
                    state__in=["approved", "rejected", "changes_requested"]
                ).count()
                if open_count == 0:
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            cpu_used = {group: spent - cpu_before[group] for group, spent in cpu_seconds(groups).items()}
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    requests = list(ApprovalRequest.objects.values_list("state", "submitted_at", "decided_at"))
    approved = [(s, d) for state, s, d in requests if state == "approved" and d]
    latencies = [(d - s).total_seconds() for s, d in approved]
    others = len(requests) - len(approved)
    first_submit = min(s for _, s, _ in requests)
    last_decided = max(d for _, d in approved) if approved else first_submit
    rate = len(approved) / max((last_decided - first_submit).total_seconds(), 1e-9)
    verdict = "OK" if rate >= 30 else "BELOW FLOOR"
    print(
        f"workflows: {len(approved)} approved, {others} not approved, in {elapsed:.1f} s wall -> {rate:.1f} workflows/s "
        f"(floor 30/s: {verdict}); submit->approved p50 {statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s"
        f"{steal.text()}",
        flush=True,
    )
    per_workflow = {group: spent * 1000 / max(len(approved), 1) for group, spent in cpu_used.items()}
    total = sum(per_workflow.values())
    print(
        f"CPU per workflow {total:.0f} ms ("
        + ", ".join(f"{group} {spent:.0f}" for group, spent in per_workflow.items())
        + f"): at most {os.cpu_count() or 1} cores / {total:.0f} ms = {(os.cpu_count() or 1) * 1000 / total:.0f} workflows/s "
        "if this machine did nothing else",
        flush=True,
    )


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
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.mcp_server"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
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
    from approvals.policies import policy_snapshot
    from catalog.bulk import insert_instances
    from catalog.models import Team, Tool
    from portal.roles import ENGINEER, SECURITY_REVIEWER, role_group

    owner = _owner()
    team = Team.objects.get(name="bench")
    reviewer = get_user_model().objects.create_user("bench-reviewer", email="rev@example.com", password="x" * 12)
    reviewer.groups.add(role_group(ENGINEER), role_group(SECURITY_REVIEWER))
    tool = Tool.objects.filter(owner=team).first()
    snapshot = policy_snapshot("medium")
    now = timezone.now()
    rows = [
        ApprovalRequest(
            kind="tool_onboarding",
            state="in_review",
            tool=tool,
            subject_key=f"bench:{i}",
            title=f"bench request {i}",
            requester=owner,
            owning_team=team,
            tier="medium",
            risk=tool.risk,
            bound_facts={},
            facts_fingerprint="bench",
            policy_snapshot=snapshot,
            current_stage=0,
            current_role=SECURITY_REVIEWER,
            due_at=now,
            submitted_at=now,
            created_at=now,
            updated_at=now,
        )
        for i in range(OPEN_REQUESTS)
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
    queries: list[int] = []
    steal = HostSteal()
    warm_up = 10  # the first decisions of a process compile templates and plans; they are not measured
    for number, request in enumerate(rows[: DECISIONS + warm_up]):
        if use_ui:
            url = reverse("approvals:decide", args=[request.pk])
            # The facts fingerprint the queue row's form carries (empty rows: the bench's requests have no facts).
            payload = {
                "outcome": "approve",
                "comment": "ok",
                "stage_index": 0,
                "facts_fingerprint": request.facts_fingerprint,
            }
            headers = {"HTTP_HX_REQUEST": "true"}
        else:
            url = f"/api/v1/approvals/requests/{request.pk}/decide/"
            payload = {
                "outcome": "approve",
                "comment": "ok",
                "stage_index": 0,
                "facts_fingerprint": request.facts_fingerprint,
            }
            headers = {}
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.post(url, payload, **headers)
            elapsed_ms = (time.perf_counter() - started) * 1000
        if number >= warm_up:
            samples.append(elapsed_ms)
            queries.append(len(captured))
        if response.status_code >= 400:
            raise SystemExit(f"decision failed: {response.status_code} {response.content[:300]!r}")
    p95 = percentile(samples, 0.95)
    print(
        f"decision -> updated row ({'htmx queue row' if use_ui else 'API'}), {OPEN_REQUESTS} open: p50 {statistics.median(samples):.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(samples):.1f} ms, queries {min(queries)}-{max(queries)} (budget p95 50 ms: {'OK' if p95 <= 50 else 'OVER BUDGET'})"
        f"{steal.text()}",
        flush=True,
    )


def main() -> None:
    with postgres() as database_url, redis() as broker_url:
        os.environ["SSRF_ALLOWLIST"] = "127.0.0.1"
        os.environ["EMAIL_BACKEND"] = "memory"
        setup_django(database_url, broker_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"machine: {os.cpu_count()} cores; PostgreSQL + Redis on loopback", flush=True)
        _throughput(database_url, broker_url)
        _decision_latency()


if __name__ == "__main__":
    main()
