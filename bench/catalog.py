"""Catalog at scale on PostgreSQL: seed_scale time; then, for searches and lists that return results (each line
prints how many it found), p50/p95 in process (Django's test client) and over HTTP through gunicorn
(gunicorn.conf.py, 1 and 8 concurrent clients); and Backstage import throughput.

Run: `python -m bench.catalog` (starts a throwaway PostgreSQL unless BENCH_DATABASE_URL is set).
`python -m bench.catalog --old PATH` also measures the code checked out at PATH (e.g. `git worktree add /tmp/old
<commit>`) with this same script, each tree on its own database, and prints both side by side with the change;
BENCH_ROUNDS (1 by default) runs the trees alternately that many times (old, new, old, new, ...) and compares the
medians of the runs: an 8-client p95 over 200 samples moves by 30-50% from one run to the next on 2 cores.
BENCH_AGENTS / BENCH_TOOLS (100k entities by default; the API search guard is read at 20k: 4000 / 16000),
BENCH_REQUESTS, BENCH_IMPORT_DOCS (0 skips the import) shrink or grow it; BENCH_PHASES=API,entity runs only the
phases whose labels contain one of those words. A BENCH_DATABASE_URL (and, with --old,
BENCH_OLD_DATABASE_URL) that already holds a seeded catalog of that size is reused. BENCH_CACHE_URL (redis) is the
cache of both the in-process client and gunicorn's workers, as in production; without it each process has its own.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

AGENTS = int(os.environ.get("BENCH_AGENTS", "20000"))
TOOLS = int(os.environ.get("BENCH_TOOLS", "80000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
IMPORT_DOCS = int(os.environ.get("BENCH_IMPORT_DOCS", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
CLIENTS = (1, 8)
# Words of seed_scale's names (systems for tools; domains and roles for agents), three of them misspelt, each with
# the kind it finds. (Words of its descriptions, such as "warehouse", match half the catalog: not a search.)
SEARCHES = [
    ("github", "tool"),
    ("reviewer", "agent"),
    ("slack", "tool"),
    ("payments", "agent"),
    ("snowflake", "tool"),
    ("triager", "agent"),
    ("kubernets", "tool"),  # kubernetes
    ("reviewr", "agent"),  # reviewer
    ("stripe", "tool"),
    ("summarizr", "agent"),  # summarizer
]
# The API search's answers are shared between requests for a few seconds (catalog.search_cache): the phase that
# repeats the searches above is what people and agents repeating a search see; COMPUTED turns that cache off.
COMPUTED = "API search (?q=, every answer computed)"
SHARED_ANSWERS = (
    "API search: 10 searches (SEARCHES) round robin, so after its first request each answer may come from the results "
    "cache (CATALOG_SEARCH_RESULTS_SECONDS, as for anyone repeating a search within seconds); 'every answer "
    "computed' runs with that cache off (a search nobody made in the last seconds; the matched ids are still shared "
    "until the next catalog write)."
)
FIGURES: dict[str, dict[str, Any]] = {}
RESULT_COUNT = re.compile(rb'data-testid="result-count">(\d+)<')
LIST_COUNT = re.compile(rb'\{"count":(\d+),')


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


def _report(label: str, samples: list[float], found: list[int], budget_ms: float | None, extra: str = "") -> None:
    p95 = percentile(samples, 0.95)
    verdict = "" if budget_ms is None else f"  (budget p95 {budget_ms:.0f} ms: {'OK' if p95 <= budget_ms else 'OVER'})"
    empty = sum(1 for n in found if n == 0)
    print(
        f"{label:<58} p50 {statistics.median(samples):6.1f} ms  p95 {p95:6.1f} ms  "
        f"found {min(found)}-{max(found)} (empty {empty}/{len(found)}){extra}{verdict}",
        flush=True,
    )
    FIGURES[label] = {"p50": statistics.median(samples), "p95": p95, "empty": empty, "requests": len(found)}


def _count_in(body: bytes) -> int:
    """How many results an answer holds: `count` of a JSON list, the catalog page's result rows, one entity page.
    A page of the API's list starts with its count, read without parsing the rest: the clients share the
    server's cores, and parsing 60-120 KB of JSON per search was 0.3-0.5 ms of their 1 ms of CPU per request."""
    counted = LIST_COUNT.match(body)
    if counted:
        return int(counted.group(1))
    if body.startswith(b"{"):
        data = json.loads(body)
        return int(data.get("count", len(data.get("results", []))))
    counted = RESULT_COUNT.search(body)
    return int(counted.group(1)) if counted else 1


# --- measuring one code tree (run with that tree as the working directory) --------------------------------------


def measure() -> None:
    os.environ.setdefault("PORTAL_MODE", "test")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    if os.environ.get("BENCH_CACHE_URL"):
        os.environ["CACHE_URL"] = os.environ["BENCH_CACHE_URL"]
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from catalog.models import Agent, Team, Tool

    print(f"code: {Path.cwd()}; {os.cpu_count()} cores; {AGENTS} agents, {TOOLS} tools", flush=True)
    cache.clear()  # the trees run one after the other; none may read counts the other cached
    call_command("migrate", verbosity=0)
    if Agent.objects.filter(name__startswith="s-").count() >= AGENTS and Tool.objects.count() >= TOOLS:
        print("seed_scale skipped: the database already holds the seeded catalog", flush=True)
    else:
        started = time.perf_counter()
        call_command("seed_scale", agents=AGENTS, tools=TOOLS, teams=500, verbosity=0)
        print(f"{'seed_scale (500 teams)':<58} {time.perf_counter() - started:6.1f} s  (budget 60 s)", flush=True)

    user, _ = get_user_model().objects.get_or_create(username="bench-reader")
    client = Client()
    client.force_login(user)
    rng = random.Random(7)
    teams = list(Team.objects.order_by("name").values_list("name", flat=True)[:500])
    # The entity pages' sample is the same in both trees and every run, and its entities have what real ones have
    # (grants; with the runtime app, telemetry, findings and scorecards): seed_scale gives them none of it.
    sample = random.Random(11)
    tool_names = sample.sample(sorted(Tool.objects.values_list("name", flat=True)), 500)
    agent_names = sample.sample(sorted(Agent.objects.values_list("name", flat=True)), 500)
    _give_entities_data(agent_names, tool_names)
    has_search_api = client.get("/api/v1/search/?q=github").status_code == 200

    # Each search with two facets (its kind and a risk tier it has matches in), round robin over the tiers.
    tiers: dict[tuple[str, str], list[str]] = {}
    for term, kind in SEARCHES:
        cache.clear()
        found = [t for t in ("low", "medium", "high", "critical") if _get(client, _page(term, kind, t))[1] > 0]
        tiers[(term, kind)] = found or ["high"]

    def page_url(i: int) -> str:
        term, kind = SEARCHES[i % len(SEARCHES)]
        choices = tiers[(term, kind)]
        return _page(term, kind, choices[(i // len(SEARCHES)) % len(choices)])

    def api_search_url(i: int) -> str:
        term, kind = SEARCHES[i % len(SEARCHES)]
        return f"/api/v1/{kind}s/?q={term}"

    def api_list_url(i: int) -> str:
        team = teams[rng.randrange(len(teams))]
        return (
            f"/api/v1/tools/?owner={team}&risk_tier=high"
            if i % 2
            else f"/api/v1/agents/?owner={team}&lifecycle=production"
        )

    def entity_url(i: int) -> str:
        if i % 2:
            return f"/catalog/tools/{tool_names[i % len(tool_names)]}/"
        return f"/catalog/agents/{agent_names[i % len(agent_names)]}/"

    def combined_url(i: int) -> str:
        term, kind = SEARCHES[i % len(SEARCHES)]
        return f"/api/v1/search/?q={term}&kind={kind}"

    for _ in range(5):  # warm up connections, caches and the plan cache
        client.get(page_url(0))

    phases: list[tuple[str, Callable[[int], str], float | None, bool]] = [
        ("catalog page: search + 2 facets (counts shared)", page_url, 80, False),
        ("catalog page: search + 2 facets (counts never cached)", page_url, 80, True),
        ("API list with filters", api_list_url, 50, False),
        ("API search (?q=, agents or tools)", api_search_url, None, False),
        (COMPUTED, api_search_url, None, False),
        ("entity page", entity_url, 50, False),
    ]
    if has_search_api:
        phases.append(("API search of agents and tools (/api/v1/search/)", combined_url, None, False))
    only = [part for part in os.environ.get("BENCH_PHASES", "").split(",") if part]
    phases = [phase for phase in phases if not only or any(part in phase[0] for part in only)]
    if any(phase[0].startswith("API search") for phase in phases):
        print(SHARED_ANSWERS, flush=True)
    for label, url_of, budget, cold in phases:
        samples, found, queries = [], [], []
        for i in range(REQUESTS):
            if cold:
                cache.clear()
            with CaptureQueriesContext(connection) as captured, _setting_values(label):
                elapsed, count = _get(client, url_of(i))
            samples.append(elapsed)
            found.append(count)
            queries.append(len(captured))
        _report(f"in process: {label}", samples, found, budget, f"  queries {min(queries)}-{max(queries)}")
    samples, found = [], []
    for i in range(REQUESTS // 4 if not only else 0):
        elapsed, count = _get(client, f"/catalog/?page={1 + i}")
        samples.append(elapsed)
        found.append(count)
    if samples:
        _report("in process: catalog page, no filter (all entries, counts)", samples, found, 80)

    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    http_phases = [
        ("catalog page: search + 2 facets", page_url),
        ("API list with filters", api_list_url),
        ("API search (?q=, agents or tools)", api_search_url),
        ("entity page", entity_url),
        (COMPUTED, api_search_url),
    ]
    http_phases = [phase for phase in http_phases if not only or any(part in phase[0] for part in only)]
    # The computed searches need a gunicorn of their own: their setting is read when a worker starts.
    for computed in (False, True):
        served = [phase for phase in http_phases if (phase[0] == COMPUTED) == computed]
        if not served:
            continue
        with _gunicorn(_settings_of(COMPUTED) if computed else {}) as port:
            for clients in CLIENTS:
                for label, url_of in served:
                    samples, found = _over_http(port, cookie, url_of, clients)
                    budget = 120 if (clients == 8 and label.startswith("API search")) else None
                    plural = "s" if clients > 1 else ""
                    _report(f"gunicorn, {clients} client{plural}: {label}", samples, found, budget)
    if IMPORT_DOCS and not only:
        _bench_import(teams[0])
    print("FIGURES " + json.dumps(FIGURES), flush=True)


def _give_entities_data(agent_names: list[str], tool_names: list[str]) -> None:
    """Each sampled agent gets approved grants to two sampled tools; with the runtime app (the new tree), every
    sampled agent has 30 days of tool and model telemetry (one tool called without a grant) and an open finding, and
    every sampled entity a scorecard. Idempotent: a reused database keeps what an earlier run wrote."""
    from datetime import timedelta

    from django.apps import apps
    from django.utils import timezone

    from catalog.models import Agent, Tool, ToolGrant

    agents = list(Agent.objects.filter(name__in=agent_names).only("id", "name").order_by("name"))
    tools = list(Tool.objects.filter(name__in=tool_names).only("id", "name").order_by("name"))
    now = timezone.now()
    grants = [
        ToolGrant(agent=agent, tool=tools[(i + k) % len(tools)], status="approved", approved_at=now)
        for i, agent in enumerate(agents)
        for k in (0, 1)
    ]
    ToolGrant.objects.bulk_create(grants, ignore_conflicts=True)
    if not apps.is_installed("runtime"):
        return
    from runtime.models import Finding, ModelUsageDaily, Scorecard, ToolUsageDaily

    today = now.date()
    usage, models = [], []
    for i, agent in enumerate(agents):
        called = (tools[i % len(tools)].name, tools[(i + 2) % len(tools)].name)  # the second one is not granted
        for day in (today - timedelta(days=offset) for offset in range(30)):
            for tool_name in called:
                for capability in ("read", "write"):
                    usage.append(
                        ToolUsageDaily(
                            day=day, agent_key=agent.name, tool_key=tool_name, capability=capability,
                            environment="production", calls=20, errors=1, le_50ms=15, le_250ms=5, last_seen=now,
                        )
                    )  # fmt: skip
            models.append(
                ModelUsageDaily(
                    day=day, agent_key=agent.name, model="gpt-4o", environment="production", calls=40, errors=0,
                    input_tokens=40_000, output_tokens=4_000,
                )
            )  # fmt: skip
    ToolUsageDaily.objects.bulk_create(usage, ignore_conflicts=True, batch_size=5000)
    ModelUsageDaily.objects.bulk_create(models, ignore_conflicts=True, batch_size=5000)
    flagged = set(Finding.objects.filter(agent_key__in=agent_names).values_list("agent_key", flat=True))
    Finding.objects.bulk_create(
        Finding(
            agent_key=agent.name,
            tool_key=tools[(i + 2) % len(tools)].name,
            kind="no_grant",
            capability="write",
            environment="production",
            count=600,
            first_seen=now - timedelta(days=29),
            last_seen=now,
        )
        for i, agent in enumerate(agents)
        if agent.name not in flagged
    )
    rules = [{"title": "Has an owner", "level": "bronze", "passed": True, "detail": ""}]
    cards = [Scorecard(kind="agent", name=name, level="bronze", rules=rules) for name in agent_names]
    cards += [Scorecard(kind="tool", name=name, level="bronze", rules=rules) for name in tool_names]
    Scorecard.objects.bulk_create(cards, ignore_conflicts=True)


def _settings_of(label: str) -> dict[str, Any]:
    """The settings (by environment variable name) a phase runs with: the computed searches keep no answer."""
    return {"CATALOG_SEARCH_RESULTS_SECONDS": "0"} if label == COMPUTED else {}


def _setting_values(label: str) -> Any:
    from django.test import override_settings

    return override_settings(**{name: int(value) for name, value in _settings_of(label).items()})


def _page(term: str, kind: str, tier: str) -> str:
    return f"/catalog/?q={term}&kind={kind}&risk_tier={tier}"


def _get(client: Any, url: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    return elapsed, _count_in(response.content)


class _gunicorn:
    """gunicorn with gunicorn.conf.py (its WEB_CONCURRENCY/WEB_THREADS defaults) on a free loopback port."""

    def __init__(self, environment: dict[str, str] | None = None) -> None:
        self.environment = environment or {}

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        environment = {**os.environ, **self.environment, "PORT": str(self.port)}
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"]
        command += ["--access-logfile", "/dev/null", "portal.wsgi"]
        self.process = subprocess.Popen(command, env=environment, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                time.sleep(0.3)
        else:
            raise SystemExit("gunicorn did not start within 60 s")
        workers = os.environ.get("WEB_CONCURRENCY", "gunicorn.conf.py's default")
        threads = os.environ.get("WEB_THREADS", "gunicorn.conf.py's default")
        settings = "".join(f", {name}={value}" for name, value in self.environment.items())
        print(f"gunicorn on 127.0.0.1:{self.port}: workers {workers}, threads {threads}{settings}", flush=True)
        return self.port

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _over_http(port: int, cookie: str, url_of: Callable[[int], str], clients: int) -> tuple[list[float], list[int]]:
    """REQUESTS requests (after a warm-up round) from `clients` threads, each on its own keep-alive connection."""
    samples: list[float] = []
    found: list[int] = []
    lock = threading.Lock()

    def run(first: int, count: int, record: bool) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(first, first + count):
            url = url_of(i)
            headers = {"Cookie": cookie, "Host": "127.0.0.1"}
            started = time.perf_counter()
            connection.request("GET", url, headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise SystemExit(f"{url} answered {response.status} over HTTP")
            if record:
                with lock:
                    samples.append(elapsed)
                    found.append(_count_in(body))
        connection.close()

    for record in (False, True):
        per_client = (REQUESTS if record else 4 * clients) // clients
        threads = [threading.Thread(target=run, args=(n * per_client, per_client, record)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return samples, found


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


def _bench_import(owner: str) -> None:
    from catalog.importing import import_inputs
    from catalog.models import Agent

    # A reused database holds earlier runs' imports: new names keep the first import all new.
    runs = Agent.objects.filter(name__startswith="imp", name__endswith="-agent-1").count()
    content = _backstage_file(IMPORT_DOCS, owner).replace(b"name: imp-", f"name: imp{runs or ''}-".encode())
    for label, key in (
        (f"import {IMPORT_DOCS}-document Backstage file (new)", "created"),
        ("re-import (unchanged)", "unchanged"),
    ):
        started = time.perf_counter()
        report = import_inputs([("bench.yaml", content)])
        elapsed = time.perf_counter() - started
        print(
            f"{label:<58} {elapsed:6.2f} s = {IMPORT_DOCS / elapsed:7.0f} docs/s ({key} {getattr(report, key)}, "
            f"failed {report.failed})",
            flush=True,
        )
        FIGURES[label] = {"docs_per_s": IMPORT_DOCS / elapsed}


# --- old and new side by side -----------------------------------------------------------------------------------


def _run_tree(tree: Path, database_url: str, name: str) -> dict[str, dict[str, Any]]:
    from bench.services import figures_of_tree  # the parent's (this tree's) module: the measured tree may not have it

    environment = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(tree)}
    return figures_of_tree(tree, [sys.executable, str(Path(__file__).resolve()), "measure"], environment, name)


def _side_by_side(old_runs: list[dict[str, dict[str, Any]]], new_runs: list[dict[str, dict[str, Any]]]) -> None:
    """Each figure's runs in both trees, and the change of their medians."""
    print(f"\n{'figure':<58} {'old runs':>17} {'new runs':>17} {'change':>8}")
    for label, figures in new_runs[0].items():
        key = "docs_per_s" if "docs_per_s" in figures else "p95"
        unit = "docs/s" if key == "docs_per_s" else "ms p95"
        before = [run[label][key] for run in old_runs if label in run]
        after = [run[label][key] for run in new_runs if label in run]
        shown_after = " / ".join(f"{value:.1f}" for value in after)
        if not before:
            print(f"{label:<58} {'-':>17} {shown_after:>17} {'new':>8}  {unit}")
            continue
        shown_before = " / ".join(f"{value:.1f}" for value in before)
        old_median, new_median = statistics.median(before), statistics.median(after)
        change = (new_median - old_median) / old_median * 100 if old_median else 0.0
        print(f"{label:<58} {shown_before:>17} {shown_after:>17} {change:+7.0f}%  {unit}")


def main() -> None:
    from bench.services import postgres

    old_tree = Path(sys.argv[sys.argv.index("--old") + 1]).resolve() if "--old" in sys.argv else None
    new_tree = Path(__file__).resolve().parent.parent
    with postgres() as database_url:
        if old_tree is None:
            _run_tree(new_tree, database_url, "new")
            return
        old_url = os.environ.get("BENCH_OLD_DATABASE_URL") or _another_database(database_url, "bench_old")
        old_runs, new_runs = [], []
        for _ in range(ROUNDS):
            old_runs.append(_run_tree(old_tree, old_url, "old"))
            new_runs.append(_run_tree(new_tree, database_url, "new"))
        _side_by_side(old_runs, new_runs)


def _another_database(database_url: str, name: str) -> str:
    """A new empty database beside `database_url`'s (the throwaway cluster)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return database_url.rsplit("/", 1)[0] + f"/{name}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        measure()
    else:
        main()
