"""Catalog at scale on PostgreSQL: seed_scale time, p95 server time of the catalog page (search + two facets),
the API list with filters and the entity page over 200 requests each, and Backstage import throughput.

Run: `python -m bench.catalog` (starts a throwaway PostgreSQL unless BENCH_DATABASE_URL is set).
BENCH_AGENTS / BENCH_TOOLS / BENCH_REQUESTS / BENCH_IMPORT_DOCS shrink or grow it. A BENCH_DATABASE_URL that
already holds a seeded catalog of that size is reused (migrated, not seeded again), to compare runs quickly.
BENCH_ONLY=import times the import alone (over the seeded catalog all the same).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any

from bench.services import HostSteal, percentile, postgres, setup_django

AGENTS = int(os.environ.get("BENCH_AGENTS", "20000"))
TOOLS = int(os.environ.get("BENCH_TOOLS", "80000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
IMPORT_DOCS = int(os.environ.get("BENCH_IMPORT_DOCS", "10000"))
TERMS = ["github", "deploy", "invoices", "slack", "snowflake", "tickets", "stripe", "alerts", "kubernets", "reviewr"]


def _timed(client: Any, url: str, samples: list[float], queries: list[int]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
    queries.append(len(captured))
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")


def _report(label: str, samples: list[float], queries: list[int], budget_ms: float, steal: HostSteal) -> None:
    p95 = percentile(samples, 0.95)
    verdict = "OK" if p95 <= budget_ms else "OVER BUDGET"
    print(
        f"{label:<52} p50 {statistics.median(samples):6.1f} ms  p95 {p95:6.1f} ms  max {max(samples):6.1f} ms  "
        f"queries {min(queries)}-{max(queries)}  (budget p95 {budget_ms:.0f} ms: {verdict}){steal.text()}",
        flush=True,
    )


def _backstage_file(count: int, owner: str) -> bytes:
    documents = []
    for i in range(count):
        if i % 2:
            documents.append(
                f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: imp-agent-{i}\n  title: Imported agent {i}\n"
                f"  description: Triages tickets and drafts answers for team {owner}.\n  tags: [imported, llm]\n"
                f'  labels: {{agentportal.io/autonomy-level: "{1 + i % 5}", agentportal.io/human-in-loop: per_action}}\n'
                f"  annotations: {{agentportal.io/data-class: internal, agentportal.io/runtime: kubernetes}}\n"
                f"spec: {{type: ai-agent, lifecycle: production, owner: {owner}}}\n"
            )
        else:
            documents.append(
                f"apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: imp-tool-{i}\n  title: Imported tool {i}\n"
                f"  description: Reads and updates records in system {i % 97}.\n"
                f"  labels: {{agentportal.io/credential-scope: delegated, agentportal.io/reach: allowlisted, agentportal.io/data-class: internal}}\n"
                f'  annotations:\n    agentportal.io/version: "1.{i % 10}.0"\n'
                f'    agentportal.io/capabilities: \'[{{"name":"list_records","read_only":true}},{{"name":"update_record","destructive":false}}]\'\n'
                f'spec: {{type: mcp-server, lifecycle: production, owner: {owner}, definition: "tools: [list_records, update_record]"}}\n'
            )
    return "---\n".join(documents).encode()


def main() -> None:
    with postgres() as database_url:
        setup_django(database_url)
        from django.contrib.auth import get_user_model
        from django.core.cache import cache
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from catalog.models import Agent, Team, Tool

        print(
            f"machine: {os.cpu_count()} cores; PostgreSQL {connection.vendor}; {AGENTS} agents, {TOOLS} tools",
            flush=True,
        )
        call_command("migrate", verbosity=0)
        if Agent.objects.filter(name__startswith="s-").count() >= AGENTS and Tool.objects.count() >= TOOLS:
            print("seed_scale skipped: BENCH_DATABASE_URL already holds the seeded catalog", flush=True)
        else:
            started, steal = time.perf_counter(), HostSteal()
            call_command("seed_scale", agents=AGENTS, tools=TOOLS, teams=500, verbosity=0)
            print(
                f"{f'seed_scale --agents {AGENTS} --tools {TOOLS} (500 teams)':<52} {time.perf_counter() - started:6.1f} s  (budget 60 s){steal.text()}",
                flush=True,
            )

        if os.environ.get("BENCH_ONLY") == "import":  # skip the page timings
            _bench_import(Team.objects.order_by("name").values_list("name", flat=True)[0])
            return

        user, _ = get_user_model().objects.get_or_create(username="bench-reader")
        client = Client()
        client.force_login(user)
        rng = random.Random(7)
        teams = list(Team.objects.values_list("name", flat=True)[:500])
        tool_names = list(Tool.objects.order_by("?").values_list("name", flat=True)[:500])
        agent_names = list(Agent.objects.order_by("?").values_list("name", flat=True)[:500])
        for _ in range(5):  # warm up connections, caches and the plan cache
            client.get("/catalog/?q=github&kind=tool&risk_tier=high")

        # Each of the 20 searches comes 10 times: after its first visit its counts are shared (catalog/search_cache).
        # The second round drops them before every request, so every page counts its matches afresh.
        for label, cold in [("(with facet counts)", False), ("(counts never cached)", True)]:
            samples: list[float] = []
            queries: list[int] = []
            steal = HostSteal()
            for i in range(REQUESTS):
                term = TERMS[i % len(TERMS)]
                tier = ["low", "medium", "high", "critical"][i % 4]
                if cold:
                    cache.clear()
                url = f"/catalog/?q={term}&kind={'tool' if i % 2 else 'agent'}&risk_tier={tier}"
                _timed(client, url, samples, queries)
            _report(f"catalog page: search + 2 facets {label}", samples, queries, 80, steal)

        samples, queries, steal = [], [], HostSteal()
        for i in range(REQUESTS):
            team = rng.choice(teams)
            url = (
                f"/api/v1/tools/?owner={team}&risk_tier=high"
                if i % 2
                else f"/api/v1/agents/?owner={team}&lifecycle=production"
            )
            _timed(client, url, samples, queries)
        _report("API list with filters", samples, queries, 50, steal)

        samples, queries, steal = [], [], HostSteal()
        for i in range(REQUESTS):
            url = (
                f"/catalog/tools/{tool_names[i % len(tool_names)]}/"
                if i % 2
                else f"/catalog/agents/{agent_names[i % len(agent_names)]}/"
            )
            _timed(client, url, samples, queries)
        _report("entity page", samples, queries, 50, steal)

        samples, queries, steal = [], [], HostSteal()
        for i in range(REQUESTS // 4):
            _timed(client, f"/catalog/?page={1 + i}", samples, queries)
        _report("catalog page: no filter (all 100k, counts)", samples, queries, 80, steal)

        _bench_import(teams[0])


def _bench_import(owner: str) -> None:
    from catalog.importing import import_inputs
    from catalog.models import Agent

    # A reused BENCH_DATABASE_URL holds earlier runs' imports: new names keep the first import all new.
    runs = Agent.objects.filter(name__startswith="imp", name__endswith="-agent-1").count()
    content = _backstage_file(IMPORT_DOCS, owner).replace(b"name: imp-", f"name: imp{runs or ''}-".encode())
    started, steal = time.perf_counter(), HostSteal()
    report = import_inputs([("bench.yaml", content)])
    elapsed = time.perf_counter() - started
    print(
        f"{f'import {IMPORT_DOCS}-document Backstage file (new)':<52} {elapsed:6.2f} s = {IMPORT_DOCS / elapsed:7.0f} docs/s "
        f"(created {report.created}, failed {report.failed}; floor 2000 docs/s){steal.text()}",
        flush=True,
    )
    started = time.perf_counter()
    report = import_inputs([("bench.yaml", content)])
    elapsed = time.perf_counter() - started
    print(
        f"{'re-import same file (all unchanged)':<52} {elapsed:6.2f} s = {IMPORT_DOCS / elapsed:7.0f} docs/s (unchanged {report.unchanged})",
        flush=True,
    )


if __name__ == "__main__":
    main()
