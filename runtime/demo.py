"""Demo telemetry for `make run`: two weeks of calls by the demo agents (through the same ingest path as
/v1/traces), a few ungranted calls and a shadow agent so findings exist, eval results, scorecards and KPI rows, and
one agent asking for autonomy 4 (an autonomy change request with its runtime evidence)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.utils import timezone

from catalog import services as catalog
from catalog.models import Agent, TeamMembership, ToolGrant
from portal.context import acting_as, actor_for_user
from runtime.ingest import ingest
from runtime.kpis import kpis_snapshot
from runtime.models import Evaluation, KpiSnapshot, SpanRecord
from runtime.otlp import SpanFacts
from runtime.scorecards import scorecards_compute

MODELS = ("gpt-4o", "claude-sonnet-4", "gpt-4o-mini")


def _span(rng: random.Random, when: Any, attributes: dict[str, Any], environment: str, millis: float) -> SpanFacts:
    start = int(when.timestamp() * 1e9)
    return SpanFacts(
        trace_id=f"{rng.getrandbits(128):032x}",
        span_id=f"{rng.getrandbits(64):016x}",
        start_ns=start,
        end_ns=start + int(millis * 1e6),
        status_error=False,
        attributes=attributes,
        resource={"deployment.environment.name": environment},
    )


def seed(*, stdout: Any = None, days: int = 14, calls_per_day: int = 40, rng_seed: int = 7) -> int:
    """Idempotent: does nothing when spans exist. Returns the number of spans ingested."""
    if SpanRecord.objects.exists():
        if stdout is not None:
            stdout.write("runtime demo: telemetry already present, left alone")
        return 0
    rng = random.Random(rng_seed)  # demo data, not security
    now = timezone.now()
    spans: list[SpanFacts] = []
    grants = list(ToolGrant.objects.select_related("agent", "tool").prefetch_related("tool__capabilities"))
    agents = list(Agent.objects.all())
    for offset in range(days, -1, -1):
        day = now - timedelta(days=offset)
        for grant in grants:
            capabilities = grant.capability_names or [c.name for c in grant.tool.capabilities.all()] or ["call"]
            for _ in range(rng.randint(calls_per_day // 2, calls_per_day)):
                attributes = {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.agent.name": grant.agent.name,
                    "gen_ai.tool.name": rng.choice(capabilities),
                    "mcp.server.name": grant.tool.name,
                }
                if rng.random() < 0.03:
                    attributes["error.type"] = rng.choice(["TimeoutError", "HTTPError"])
                when = day - timedelta(minutes=rng.randint(0, 600))
                spans.append(_span(rng, when, attributes, grant.environment, rng.lognormvariate(4, 0.8)))
        for agent in agents:
            chat = {
                "gen_ai.operation.name": "chat",
                "gen_ai.agent.name": agent.name,
                "gen_ai.request.model": rng.choice(MODELS),
                "gen_ai.usage.input_tokens": rng.randint(20_000, 200_000),
                "gen_ai.usage.output_tokens": rng.randint(2_000, 20_000),
            }
            spans.append(_span(rng, day - timedelta(minutes=5), chat, "production", rng.uniform(400, 3000)))
    if agents:
        rogue = {"gen_ai.operation.name": "execute_tool", "gen_ai.agent.name": agents[0].name}
        spans.append(
            _span(
                rng,
                now - timedelta(hours=2),
                {**rogue, "gen_ai.tool.name": "delete_repo", "mcp.server.name": "github-mcp"},
                "production",
                80,
            )
        )
        spans.append(
            _span(
                rng,
                now - timedelta(hours=1),
                {**rogue, "gen_ai.tool.name": "run_query", "mcp.server.name": "warehouse-sql"},
                "staging",
                120,
            )
        )
    shadow = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.agent.name": "shadow-notebook",
        "gen_ai.tool.name": "run_query",
        "mcp.server.name": "warehouse-sql",
    }
    spans.append(_span(rng, now - timedelta(hours=3), shadow, "production", 300))
    for start in range(0, len(spans), 1000):
        ingest(spans=spans[start : start + 1000], token=None)
    for agent in agents[:2]:
        Evaluation.objects.get_or_create(
            agent_name=agent.name, suite="golden", defaults={"passed": True, "score": 0.92}
        )
    _ask_for_autonomy(agents[:2], stdout)
    scorecards_compute()
    kpis_snapshot()
    today = now.date()
    current = list(KpiSnapshot.objects.filter(day=today, figure__in=["agents_by_tier", "tools_by_tier"]))
    # Earlier days of the demo: the catalog as it is now, so the charts over time have a line to draw.
    KpiSnapshot.objects.bulk_create(
        [
            KpiSnapshot(day=today - timedelta(days=offset), figure=row.figure, label=row.label, value=row.value)
            for offset in range(1, days + 1)
            for row in current
        ],
        ignore_conflicts=True,
    )
    if stdout is not None:
        stdout.write(f"runtime demo: {len(spans)} spans over {days} days, scorecards and KPIs computed")
    return len(spans)


def _ask_for_autonomy(agents: list[Agent], stdout: Any) -> None:
    """A maintainer of one of the evaluated agents raises it to autonomy 4: the gate holds the raise in an autonomy
    change request whose evidence check runs on the demo telemetry."""
    for agent in agents:
        if agent.autonomy_level is not None and agent.autonomy_level >= 4:
            continue
        membership = (
            TeamMembership.objects.filter(
                team_id=agent.owner_id, role=TeamMembership.Role.MAINTAINER, user__is_active=True
            )
            .select_related("user")
            .first()
        )
        if membership is None:
            continue
        with acting_as(actor_for_user(membership.user)):  # type: ignore[arg-type]
            updated = catalog.agent_update(actor=membership.user, agent=agent, data={"autonomy_level": 4})
        if stdout is not None:
            stdout.write(f"runtime demo: {agent.name}: " + "; ".join(held.message for held in updated.held_changes))
        return
