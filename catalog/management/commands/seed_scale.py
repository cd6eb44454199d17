"""Synthetic catalog at scale for benchmarks: realistic names, descriptions, tags and capabilities.

Rows are written in bulk (entities, capabilities, search rows), with risk computed by the
same rubric as every other write; the audit trail gets one event for the whole seed rather than 100,000.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import time
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from catalog import risk, services
from catalog.bulk import allocate_ids, copy_rows
from catalog.models import Agent, Capability, CatalogEntry, Team, Tool
from catalog.search_cache import invalidate_catalog_counts
from catalog.teams import maintainers_group_name, members_group_name
from portal.audit import audit_record

DOMAINS = ["payments", "search", "billing", "identity", "growth", "infra", "data", "ml", "support", "security",
           "mobile", "web", "logistics", "inventory", "pricing", "fraud", "risk", "ads", "maps", "media"]  # fmt: skip
NOUNS = ["reviewer", "triager", "assistant", "planner", "fixer", "summarizer", "auditor", "router", "scout",
         "writer", "tester", "migrator", "responder", "analyst", "curator", "guard", "pilot", "bot"]  # fmt: skip
SYSTEMS = ["github", "gitlab", "jira", "slack", "postgres", "snowflake", "bigquery", "stripe", "salesforce",
           "zendesk", "pagerduty", "datadog", "s3", "kubernetes", "terraform", "confluence", "notion", "linear",
           "sentry", "grafana", "okta", "vault", "kafka", "redis", "elastic", "figma", "hubspot", "twilio"]  # fmt: skip
VERBS = ["list", "get", "search", "create", "update", "delete", "run", "deploy", "send", "query", "export", "close"]
OBJECTS = ["issues", "pull_requests", "tickets", "messages", "tables", "rows", "invoices", "users", "alerts",
           "dashboards", "pipelines", "secrets", "files", "pages", "orders", "events"]  # fmt: skip
TAGS = ["python", "typescript", "go", "llm", "rag", "mcp", "a2a", "internal", "customer-facing", "pii", "gdpr",
        "sox", "experimental", "critical-path", "batch", "realtime", "ci", "oncall", "finance", "hr", "eu", "us"]  # fmt: skip
WORDS = ["agent", "tool", "reads", "writes", "reviews", "pull", "requests", "tickets", "incidents", "customers",
         "invoices", "data", "warehouse", "queries", "summarizes", "drafts", "triages", "routes", "alerts",
         "deploys", "services", "checks", "policies", "secrets", "logs", "metrics", "dashboards", "the", "a",
         "for", "with", "and", "of", "to", "from", "on", "in", "by", "every", "daily", "weekly", "owner", "team",
         "platform"]  # fmt: skip


TOOL_KINDS = list(Tool.Kind.values)
TRANSPORTS = list(Tool.Transport.values)
TOOL_STATUSES = list(Tool.Status.values)
AGENT_TYPES = list(Agent.AgentType.values)
RUNTIMES = list(Agent.Runtime.values)
AGENT_STATUSES = list(Agent.Status.values)
_SENTENCES: dict[int, list[str]] = {}


def _sentence(rng: random.Random, words: int) -> str:
    """From a pool of 500 generated sentences per length: realistic variety without 5 million random draws."""
    pool = _SENTENCES.get(words)
    if pool is None:
        pool_rng = random.Random(words)
        pool = [" ".join(pool_rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(500)]
        _SENTENCES[words] = pool
    return pool[rng.randrange(500)]


class Command(BaseCommand):
    help = "Create a large synthetic catalog (default 20,000 agents and 80,000 tools over 500 teams)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--agents", type=int, default=20_000)
        parser.add_argument("--tools", type=int, default=80_000)
        parser.add_argument("--teams", type=int, default=500)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--prefix", default="s", help="Name prefix, so several seeds can coexist.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["teams"] < 1:
            raise CommandError("--teams must be at least 1")
        started = time.perf_counter()
        rng = random.Random(options["seed"])
        prefix = options["prefix"]
        with transaction.atomic(), _search_indexes_rebuilt_after():
            teams = self._teams(options["teams"], prefix)
            tools = self._tools(rng, options["tools"], teams, prefix)
            agents = self._agents(rng, options["agents"], teams, prefix)
            audit_record(
                action="catalog.seed_scale",
                object_type="catalog",
                object_id=prefix,
                changes={"teams": len(teams), "tools": len(tools), "agents": len(agents)},
            )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE catalog_catalogentry; ANALYZE catalog_tool; ANALYZE catalog_agent;")
        invalidate_catalog_counts()
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"seeded {len(teams)} teams, {len(tools)} tools, {len(agents)} agents in {elapsed:.1f} s ({connection.vendor})"
        )

    def _teams(self, count: int, prefix: str) -> list[Team]:
        names = [f"{prefix}-{DOMAINS[i % len(DOMAINS)]}-{i}" for i in range(count)]
        Group.objects.bulk_create(
            [Group(name=members_group_name(n)) for n in names] + [Group(name=maintainers_group_name(n)) for n in names],
            ignore_conflicts=True,
        )
        groups = {g.name: g for g in Group.objects.filter(name__startswith=f"team:{prefix}-")}
        Team.objects.bulk_create(
            [
                Team(
                    name=n,
                    title=n.replace("-", " ").title(),
                    members_group=groups[members_group_name(n)],
                    maintainers_group=groups[maintainers_group_name(n)],
                )
                for n in names
            ],
            ignore_conflicts=True,
        )
        return list(Team.objects.filter(name__in=names))

    def _tools(self, rng: random.Random, count: int, teams: list[Team], prefix: str) -> list[SimpleNamespace]:
        tools: list[SimpleNamespace] = []
        capability_rows: list[dict[str, Any]] = []
        ids = allocate_ids(Tool, count)
        now = timezone.now()
        entity_defaults = {"repository_url": "", "links": [], "annotations": {}, "source_key": "", "orphaned": False,
                           "source_location_id": None, "created_at": now, "updated_at": now}  # fmt: skip
        tool_defaults = {"endpoint_url": "", "auth_scheme": "", "secret_names": [], "packages": [], "remotes": [],
                         "definition": ""}  # fmt: skip

        def tool_rows() -> Iterator[dict[str, Any]]:
            # Rows are generated while PostgreSQL ingests the previous ones (two cores, two workers).
            for i in range(count):
                system = rng.choice(SYSTEMS)
                name = f"{prefix}-{system}-{rng.choice(['mcp', 'api', 'cli'])}-{i}"
                caps: dict[str, dict[str, Any]] = {}
                for verb in rng.sample(VERBS, rng.randint(2, 4)):
                    read_only = verb in {"list", "get", "search", "query", "export"}
                    cap_name = f"{verb}_{rng.choice(OBJECTS)}"
                    caps[cap_name] = {
                        "name": cap_name,
                        "description": _sentence(rng, 6),
                        "read_only": read_only,
                        "destructive": None if read_only else verb in {"delete", "deploy", "send", "close"},
                        "idempotent": read_only,
                        "open_world": rng.random() < 0.3,
                    }
                tool = SimpleNamespace(
                    id=ids[i],
                    pk=ids[i],
                    name=name,
                    title=f"{system.title()} {name.split('-')[-2].upper()} {i}",
                    description=_sentence(rng, 18) + "\n\n" + _sentence(rng, 12),
                    owner_id=rng.choice(teams).pk,
                    kind=rng.choice(TOOL_KINDS),
                    version=f"{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
                    data_class=rng.choice([*risk.DATA_CLASSES, None]),
                    reach=rng.choice([*risk.REACH, None]),
                    credential_scope=rng.choice([*risk.CREDENTIAL_SCOPES, None]),
                    transport=rng.choice(TRANSPORTS),
                    annotations_trusted=rng.random() < 0.4,
                    status=rng.choice(TOOL_STATUSES),
                    lifecycle=rng.choice(["experimental", "production", "production", "deprecated"]),
                    tags=rng.sample(TAGS, rng.randint(1, 4)),
                    registry_name=None,
                    capabilities_hash=services.capabilities_hash(caps.values()),
                    risk_tier="",
                    risk_score=0,
                    risk={},
                )
                facts = risk.ToolFacts(
                    data_class=tool.data_class,
                    reach=tool.reach,
                    credential_scope=tool.credential_scope,
                    annotations_trusted=tool.annotations_trusted,
                    capabilities=tuple(
                        risk.CapabilityFacts(**{k: cap[k] for k in ("name", *services.CAPABILITY_HINTS)})
                        for cap in caps.values()
                    ),
                )
                services._store_assessment(tool, risk.assess_tool(facts))  # type: ignore[arg-type]
                tool.capability_names = list(caps)
                capability_rows.extend({"tool_id": tool.id, **cap} for cap in caps.values())
                tools.append(tool)
                yield {**entity_defaults, **tool_defaults, **_fields(tool, Tool)}

        _write_rows(Tool, tool_rows())
        _write_rows(Capability, capability_rows)
        _write_rows(
            CatalogEntry,
            [
                {
                    "kind": "tool",
                    "entity_id": t.id,
                    **services.tool_entry_values(t, t.capability_names),
                    "updated_at": now,
                }  # type: ignore[arg-type]
                for t in tools
            ],
        )
        return tools

    def _agents(self, rng: random.Random, count: int, teams: list[Team], prefix: str) -> list[SimpleNamespace]:
        agents: list[SimpleNamespace] = []
        ids = allocate_ids(Agent, count)
        now = timezone.now()
        for i in range(count):
            domain = rng.choice(DOMAINS)
            name = f"{prefix}-{domain}-{rng.choice(NOUNS)}-{i}"
            agent = SimpleNamespace(
                id=ids[i],
                pk=ids[i],
                name=name,
                title=f"{domain.title()} {name.split('-')[-2]} {i}",
                description=_sentence(rng, 20) + "\n\n" + _sentence(rng, 10),
                owner_id=rng.choice(teams).pk,
                agent_type=rng.choice(AGENT_TYPES),
                autonomy_level=rng.choice([1, 2, 3, 4, 5, None]),
                human_in_loop=rng.choice([*risk.HUMAN_IN_LOOP, None]),
                data_class=rng.choice([*risk.DATA_CLASSES, None]),
                runtime=rng.choice(RUNTIMES),
                status=rng.choice(AGENT_STATUSES),
                lifecycle=rng.choice(["experimental", "production", "production", "deprecated"]),
                tags=rng.sample(TAGS, rng.randint(1, 4)),
                version="",
                risk_tier="",
                risk_score=0,
                risk={},
            )
            services._store_assessment(agent, risk.assess_agent(services.agent_facts(agent)))  # type: ignore[arg-type]
            agents.append(agent)
        entity_defaults = {"repository_url": "", "links": [], "annotations": {}, "source_key": "", "orphaned": False,
                           "source_location_id": None, "created_at": now, "updated_at": now}  # fmt: skip
        agent_defaults = {"a2a_endpoint": "", "a2a_protocol_version": "", "provider_org": "", "environments": [],
                          "skills": [], "requested_tools": []}  # fmt: skip
        _write_rows(Agent, [{**entity_defaults, **agent_defaults, **_fields(a, Agent)} for a in agents])
        _write_rows(
            CatalogEntry,
            [{"kind": "agent", "entity_id": a.id, **services.agent_entry_values(a), "updated_at": now} for a in agents],  # type: ignore[arg-type]
        )
        return agents


@contextlib.contextmanager
def _search_indexes_rebuilt_after() -> Iterator[None]:
    """Building the GIN search indexes once at the end is several times faster than 100,000 index updates."""
    if connection.vendor != "postgresql":
        yield
        return
    from catalog.migrations import _search_sql

    with connection.cursor() as cursor:
        cursor.execute(_search_sql.BULK_LOAD_DROP_INDEXES)
    yield
    with connection.cursor() as cursor:
        # Django's foreign keys are deferred; PostgreSQL builds no index while checks are pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # GIN builds are several times faster with room to sort in memory; LOCAL ends with the transaction.
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        started = time.perf_counter()
        cursor.execute(_search_sql.BULK_LOAD_CREATE_INDEXES)
        if os.environ.get("SEED_SCALE_VERBOSE"):
            print(f"  search indexes rebuilt in {time.perf_counter() - started:.2f} s")


def _fields(source: SimpleNamespace, model: type[Any]) -> dict[str, Any]:
    names = {f.attname for f in model._meta.concrete_fields}
    return {key: value for key, value in vars(source).items() if key in names}


def _write_rows(model: type[Any], rows: Iterable[dict[str, Any]]) -> None:
    started = time.perf_counter()
    count = _copy_rows(model, rows)
    if os.environ.get("SEED_SCALE_VERBOSE"):
        print(f"  {model._meta.db_table}: {count} rows in {time.perf_counter() - started:.2f} s")


def _copy_rows(model: type[Any], rows: Iterable[dict[str, Any]]) -> int:
    """catalog.bulk.copy_rows for dicts: COPY on PostgreSQL, with a writer thread sending while the generator
    builds the next rows, and each JSON object shared by many rows (the defaults) dumped once; bulk_create
    elsewhere. Rows may be a generator, consumed while the server ingests."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    columns = [f.attname for f in model._meta.concrete_fields if f.attname in first]
    count = 0

    def as_tuples() -> Iterator[tuple[Any, ...]]:
        nonlocal count
        for row in itertools.chain([first], iterator):
            count += 1
            yield tuple(row[column] for column in columns)

    copy_rows(model, columns, as_tuples())
    return count
