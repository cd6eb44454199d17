"""Synthetic catalog at scale for benchmarks: realistic names, descriptions, tags and capabilities.

Rows are written in bulk (entities, capabilities, search rows), with risk computed by the
same rubric as every other write; the audit trail gets one event for the whole seed rather than 100,000.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from catalog import risk, scoring, search_index, services
from catalog.bulk import BackgroundCopies, allocate_ids
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
LIFECYCLES = ["experimental", "production", "production", "deprecated"]
DATA_CLASS_OPTIONS = [*risk.DATA_CLASSES, None]  # None: unknown, which the rubric scores at its maximum
REACH_OPTIONS = [*risk.REACH, None]
CREDENTIAL_OPTIONS = [*risk.CREDENTIAL_SCOPES, None]
HUMAN_OPTIONS = [*risk.HUMAN_IN_LOOP, None]
AUTONOMY_OPTIONS = [1, 2, 3, 4, 5, None]
READ_VERBS = frozenset({"list", "get", "search", "query", "export"})
DESTRUCTIVE_VERBS = frozenset({"delete", "deploy", "send", "close"})
_SENTENCES: dict[int, list[str]] = {}


def _sentence(rng: random.Random, words: int) -> str:
    """From a pool of 500 generated sentences per length: realistic variety without 5 million random draws."""
    pool = _SENTENCES.get(words)
    if pool is None:
        pool_rng = random.Random(words)
        pool = [" ".join(pool_rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(500)]
        _SENTENCES[words] = pool
    return pool[int(rng.random() * 500)]


class Command(BaseCommand):
    help = (
        "Create a large synthetic catalog (default 20,000 agents and 80,000 tools over 500 teams). On PostgreSQL it"
        " loads without the catalog tables' indexes and holds them locked until it commits: for benchmark and demo"
        " databases, not one the portal is serving from."
    )

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
        with _verbose_step("committed"), transaction.atomic():
            with _bulk_load():
                teams = self._teams(options["teams"], prefix)
                with _verbose_step("tools generated and written"):
                    tools = self._tools(rng, options["tools"], teams, prefix)
                with _verbose_step("agents generated and written"):
                    agents = self._agents(rng, options["agents"], teams, prefix)
            audit_record(
                action="catalog.seed_scale",
                object_type="catalog",
                object_id=prefix,
                changes={"teams": len(teams), "tools": len(tools), "agents": len(agents)},
            )
        if connection.vendor == "postgresql":
            with _verbose_step("analysed"):
                _analyse(LOADED_TABLES)
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
        ids = allocate_ids(Tool, count)
        now = timezone.now()
        entity_defaults = _entity_defaults(now)
        tool_defaults = {"endpoint_url": "", "auth_scheme": "", "secret_names": [], "packages": [], "remotes": [],
                         "definition": ""}  # fmt: skip
        pick = _picker(rng)
        assessments = _Assessments()
        with BackgroundCopies() as copies:
            for chunk_start in range(0, count, CHUNK):
                chunk: list[SimpleNamespace] = []
                capability_rows: list[dict[str, Any]] = []
                for i in range(chunk_start, min(count, chunk_start + CHUNK)):
                    tool, capabilities = _tool(rng, pick, i, ids[i], teams, prefix, assessments)
                    capability_rows.extend({"tool_id": tool.id, **cap} for cap in capabilities)
                    chunk.append(tool)
                # PostgreSQL ingests this chunk (and runs the search triggers) while the next one is generated.
                _copy_objects(copies, Tool, chunk, {**entity_defaults, **tool_defaults})
                _copy_dicts(copies, Capability, capability_rows)
                _copy_dicts(
                    copies,
                    CatalogEntry,
                    [
                        {
                            "kind": "tool",
                            "entity_id": t.id,
                            **search_index.tool_entry_values(t, t.capability_names),  # type: ignore[arg-type]
                            "updated_at": now,
                        }
                        for t in chunk
                    ],
                )
                tools.extend(chunk)
        return tools

    def _agents(self, rng: random.Random, count: int, teams: list[Team], prefix: str) -> list[SimpleNamespace]:
        agents: list[SimpleNamespace] = []
        ids = allocate_ids(Agent, count)
        now = timezone.now()
        entity_defaults = _entity_defaults(now)
        agent_defaults = {"a2a_endpoint": "", "a2a_protocol_version": "", "provider_org": "", "environments": [],
                          "skills": [], "requested_tools": []}  # fmt: skip
        pick = _picker(rng)
        assessments = _Assessments()
        with BackgroundCopies() as copies:
            for chunk_start in range(0, count, CHUNK):
                chunk = [
                    _agent(rng, pick, i, ids[i], teams, prefix, assessments)
                    for i in range(chunk_start, min(count, chunk_start + CHUNK))
                ]
                _copy_objects(copies, Agent, chunk, {**entity_defaults, **agent_defaults})
                _copy_dicts(
                    copies,
                    CatalogEntry,
                    [
                        {"kind": "agent", "entity_id": a.id, **search_index.agent_entry_values(a), "updated_at": now}  # type: ignore[arg-type]
                        for a in chunk
                    ],
                )
                agents.extend(chunk)
        return agents


def _entity_defaults(now: Any) -> dict[str, Any]:
    """The columns agents and tools share that a seed leaves at their defaults."""
    return {"repository_url": "", "links": [], "annotations": {}, "source_key": "", "source_kind": "cli", "orphaned": False,
            "source_location_id": None, "created_at": now, "updated_at": now}  # fmt: skip


# Rows per COPY: small enough that PostgreSQL starts early and the last chunk's wait is short, large enough that
# the statement-level search triggers run over many rows at once.
CHUNK = 5000


def _picker(rng: random.Random) -> Callable[[Sequence[Any]], Any]:
    """rng.choice without its rejection sampling: a third of the generation's time went to choosing."""
    draw = rng.random

    def pick(options: Sequence[Any]) -> Any:
        return options[int(draw() * len(options))]

    return pick


def _tool(
    rng: random.Random,
    pick: Callable[[Sequence[Any]], Any],
    i: int,
    tool_id: int,
    teams: list[Team],
    prefix: str,
    assessments: _Assessments,
) -> tuple[SimpleNamespace, list[dict[str, Any]]]:
    system = pick(SYSTEMS)
    name = f"{prefix}-{system}-{pick(['mcp', 'api', 'cli'])}-{i}"
    caps: dict[str, dict[str, Any]] = {}
    for verb in rng.sample(VERBS, 2 + int(rng.random() * 3)):
        read_only = verb in READ_VERBS
        cap_name = f"{verb}_{pick(OBJECTS)}"
        caps[cap_name] = {
            "name": cap_name,
            "description": _sentence(rng, 6),
            "read_only": read_only,
            "destructive": None if read_only else verb in DESTRUCTIVE_VERBS,
            "idempotent": read_only,
            "open_world": rng.random() < 0.3,
        }
    tool = SimpleNamespace(
        id=tool_id,
        pk=tool_id,
        name=name,
        title=f"{system.title()} {name.split('-')[-2].upper()} {i}",
        description=_sentence(rng, 18) + "\n\n" + _sentence(rng, 12),
        owner_id=pick(teams).pk,
        kind=pick(TOOL_KINDS),
        version=f"{int(rng.random() * 6)}.{int(rng.random() * 21)}.{int(rng.random() * 10)}",
        data_class=pick(DATA_CLASS_OPTIONS),
        reach=pick(REACH_OPTIONS),
        credential_scope=pick(CREDENTIAL_OPTIONS),
        transport=pick(TRANSPORTS),
        annotations_trusted=rng.random() < 0.4,
        status=pick(TOOL_STATUSES),
        lifecycle=pick(LIFECYCLES),
        tags=rng.sample(TAGS, 1 + int(rng.random() * 4)),
        registry_name=None,
        capabilities_hash=services.capabilities_hash(caps.values()),
        risk_tier="",
        risk_score=0,
        risk={},
    )
    assessments.store_tool(tool, caps)
    tool.capability_names = list(caps)
    return tool, list(caps.values())


def _agent(
    rng: random.Random,
    pick: Callable[[Sequence[Any]], Any],
    i: int,
    agent_id: int,
    teams: list[Team],
    prefix: str,
    assessments: _Assessments,
) -> SimpleNamespace:
    domain = pick(DOMAINS)
    name = f"{prefix}-{domain}-{pick(NOUNS)}-{i}"
    agent = SimpleNamespace(
        id=agent_id,
        pk=agent_id,
        name=name,
        title=f"{domain.title()} {name.split('-')[-2]} {i}",
        description=_sentence(rng, 20) + "\n\n" + _sentence(rng, 10),
        owner_id=pick(teams).pk,
        agent_type=pick(AGENT_TYPES),
        autonomy_level=pick(AUTONOMY_OPTIONS),
        human_in_loop=pick(HUMAN_OPTIONS),
        data_class=pick(DATA_CLASS_OPTIONS),
        runtime=pick(RUNTIMES),
        status=pick(AGENT_STATUSES),
        lifecycle=pick(LIFECYCLES),
        tags=rng.sample(TAGS, 1 + int(rng.random() * 4)),
        version="",
        risk_tier="",
        risk_score=0,
        risk={},
    )
    assessments.store_agent(agent)
    return agent


# The tables seed_scale fills (the search tables through the triggers), whose indexes and foreign keys are
# dropped during the load and built again after it.
LOADED_TABLES = (
    "catalog_tool",
    "catalog_capability",
    "catalog_catalogentry",
    "catalog_agent",
    "catalog_search_row",
    "catalog_search_word",
)


@contextlib.contextmanager
def _bulk_load() -> Iterator[None]:
    """On PostgreSQL, load as pg_restore does: without the loaded tables' indexes and foreign keys, then build
    each index once and check each key with one join. Measured on 80,000 tools: maintaining their nine indexes
    row by row cost 2.2 s of the server's CPU, building them 1.1 s; 440,000 row-by-row key checks about 4 s, the
    joins 0.3 s; 100,000 GIN insertions several times one bulk build. Primary keys and unique constraints stay
    (the triggers' upserts need them). All in the caller's transaction: a failure restores everything, and a
    duplicate name still fails the seed, when its unique index is built."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        # Tables with foreign-key checks still pending in an enclosing transaction cannot be altered: run them.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
            [list(LOADED_TABLES)],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid::regclass::text = ANY(%s)"
            " AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = indexrelid) ORDER BY 1",
            [list(LOADED_TABLES)],
        )
        indexes = cursor.fetchall()
        for table, name, _definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {_quoted(table)} DROP CONSTRAINT {_quoted(name)}")
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {_quoted(name)}")
    yield
    with connection.cursor() as cursor:
        with _verbose_step(f"{len(indexes)} indexes built"):
            # Sorts in memory are several times faster; LOCAL ends with the transaction.
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for _name, definition in indexes:
                cursor.execute(definition)
        with _verbose_step(f"{len(foreign_keys)} foreign keys checked"):
            for table, name, definition in foreign_keys:
                cursor.execute(f"ALTER TABLE {_quoted(table)} ADD CONSTRAINT {_quoted(name)} {definition}")


def _analyse(tables: Sequence[str]) -> None:
    """Fresh planner statistics at once, rather than when autovacuum comes by: without them the planner guesses
    how many rows a search term or an owner matches. One connection per table, two at a time (two cores),
    unless an enclosing transaction still holds the load's locks: then other connections would wait for it."""
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {_quoted(table)}")
        return

    def analyse(table: str) -> None:
        try:
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.execute(f"ANALYZE {_quoted(table)}")
        finally:
            connections[DEFAULT_DB_ALIAS].close()

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="analyse") as pool:
        list(pool.map(analyse, tables))


def _quoted(identifier: str) -> str:
    return connection.ops.quote_name(identifier)


@contextlib.contextmanager
def _verbose_step(label: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    if os.environ.get("SEED_SCALE_VERBOSE"):
        print(f"  {label} in {time.perf_counter() - started:.2f} s", flush=True)


class _Assessments:
    """The rubric's result per distinct set of facts. A seed holds a few hundred distinct ones among 100,000
    entities; assessing each entity was a fifth of the generation time. Rows sharing one assessment also share
    its stored JSON object, which the COPY then serialises once."""

    def __init__(self) -> None:
        self._by_facts: dict[Any, tuple[str, int, dict[str, Any]]] = {}

    def store_tool(self, tool: SimpleNamespace, capabilities: dict[str, dict[str, Any]]) -> None:
        # A tool's assessment reads its capabilities' annotations, never their names (tested).
        key = (
            tool.data_class,
            tool.reach,
            tool.credential_scope,
            tool.annotations_trusted,
            frozenset(tuple(cap[hint] for hint in services.CAPABILITY_HINTS) for cap in capabilities.values()),
        )
        known = self._by_facts.get(key)
        if known is None:
            facts = risk.ToolFacts(
                data_class=tool.data_class,
                reach=tool.reach,
                credential_scope=tool.credential_scope,
                annotations_trusted=tool.annotations_trusted,
                capabilities=tuple(
                    risk.CapabilityFacts(name=cap["name"], **{hint: cap[hint] for hint in services.CAPABILITY_HINTS})
                    for cap in capabilities.values()
                ),
            )
            known = self._by_facts[key] = self._stored(risk.assess_tool(facts))
        tool.risk_tier, tool.risk_score, tool.risk = known

    def store_agent(self, agent: SimpleNamespace) -> None:
        facts = scoring.agent_facts(agent)  # type: ignore[arg-type]
        known = self._by_facts.get(facts)
        if known is None:
            known = self._by_facts[facts] = self._stored(risk.assess_agent(facts))
        agent.risk_tier, agent.risk_score, agent.risk = known

    @staticmethod
    def _stored(assessment: risk.Assessment) -> tuple[str, int, dict[str, Any]]:
        return assessment.tier.value, assessment.score, assessment.to_dict()


def _copy_objects(
    copies: BackgroundCopies, model: type[Any], objects: list[SimpleNamespace], defaults: dict[str, Any]
) -> None:
    """Queue one COPY of the model's columns read from each object's attributes, or else from `defaults`."""
    for name, value in defaults.items():
        for obj in objects:
            obj.__dict__.setdefault(name, value)
    present = objects[0].__dict__
    columns = [f.attname for f in model._meta.concrete_fields if f.attname in present]
    copies.copy_rows(model, columns, list(map(attrgetter(*columns), objects)))


def _copy_dicts(copies: BackgroundCopies, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """Queue rows given as dicts (all with the same keys) as one COPY of their columns."""
    if not rows:
        return
    columns = [f.attname for f in model._meta.concrete_fields if f.attname in rows[0]]
    copies.copy_rows(model, columns, [tuple(row[column] for column in columns) for row in rows])
