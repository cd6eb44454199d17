"""Spans in: attribute each span, hold tool calls against the agent's grants with the one call-time rule, and
write raw spans, daily counters and findings in one transaction. The batch is acknowledged only after it commits,
so an answered batch is never lost; a batch that fails is not acknowledged and the sender retries it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.bulk import copy_rows
from catalog.grant_rules import Verdict, decide
from portal.models import ApiToken
from runtime import findings
from runtime.attribution import Observation, is_genai, observe
from runtime.histogram import BUCKET_FIELDS, bucket_field
from runtime.models import Finding, ModelUsageDaily, SpanRecord, ToolUsageDaily
from runtime.otlp import SpanFacts
from runtime.resolution import CatalogView, KnownAgent, catalog_view
from runtime.upsert import add_counts_many


@dataclass
class IngestResult:
    accepted: int = 0
    ignored: int = 0  # spans that are not GenAI or MCP activity: acknowledged, not kept
    findings_opened: list[int] = field(default_factory=list)


@dataclass
class _FindingGroup:
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    capability: str = ""
    environment: str = ""
    detail: str = ""
    owner: str = ""
    agent_id: int | None = None
    severity: str = Finding.Severity.HIGH

    def add(self, obs: Observation, *, capability: str, detail: str, severity: str) -> None:
        self.count += 1
        self.first_seen = min(self.first_seen or obs.started_at, obs.started_at)
        if self.last_seen is None or obs.started_at >= self.last_seen:
            self.last_seen, self.capability, self.environment, self.detail = (
                obs.started_at,
                capability,
                obs.environment,
                detail[:500],
            )
        if findings.SEVERITY_RANK[severity] > findings.SEVERITY_RANK[self.severity]:
            self.severity = severity


class _Batch:
    def __init__(self, view: CatalogView, token: ApiToken | None, bound: KnownAgent | None) -> None:
        self.view, self.token, self.bound = view, token, bound
        self.spans: list[tuple[Any, ...]] = []  # SPAN_COLUMNS
        self.received_at = timezone.now()
        self.tools: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
        self.tool_last_seen: dict[tuple[Any, ...], datetime] = {}
        self.models: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.findings: dict[tuple[str, str, str], _FindingGroup] = defaultdict(_FindingGroup)

    def finding(self, obs: Observation, *, agent: str, tool: str, kind: str, capability: str, detail: str) -> None:
        known = self.view.agents.get(agent)
        group = self.findings[(agent, tool, kind)]
        group.owner, group.agent_id = (known.owner, known.id) if known else ("", None)
        group.add(obs, capability=capability, detail=detail, severity=findings.severity_of(kind))

    def take(self, obs: Observation) -> None:
        agent = self.view.agents.get(obs.agent)
        verdict = ""
        tool_key, capability = "", ""
        if self.bound is not None and obs.agent != self.bound.name:
            verdict = Finding.Kind.TOKEN_AGENT_MISMATCH
            self.finding(
                obs,
                agent=self.bound.name,
                tool="",
                kind=verdict,
                capability=obs.tool_name,
                detail=f"a token bound to {self.bound.name!r} sent spans of {obs.agent!r}",
            )
        elif obs.is_tool_call:
            tool, tool_key, capability = self.view.tool_for(obs, agent)
            verdict = self._check_call(obs, agent, tool, tool_key, capability)
        elif agent is None:
            verdict = Finding.Kind.UNKNOWN_AGENT
            self.finding(
                obs,
                agent=obs.agent,
                tool="",
                kind=verdict,
                capability="",
                detail=f"agent {obs.agent!r} is not in the catalog; it used model {obs.model or 'unknown'}",
            )
        self.spans.append(
            (
                self.received_at,
                obs.started_at,
                obs.trace_id[:32],
                obs.span_id[:16],
                obs.agent[:200],
                tool_key,
                capability[:200],
                obs.environment,
                obs.operation[:50],
                obs.model,
                obs.duration_ms,
                obs.error_type,
                obs.input_tokens,
                obs.output_tokens,
                verdict,
                self.token.pk if self.token else None,
            )
        )
        if verdict == Finding.Kind.TOKEN_AGENT_MISMATCH:
            return  # a forged claim: counted against nobody's usage
        day = obs.started_at.date()
        if obs.is_tool_call:
            key = (obs.agent, tool_key, capability[:200], obs.environment, day)
            counters = self.tools[key]
            counters["calls"] += 1
            counters["errors"] += 1 if obs.error_type else 0
            counters["denied"] += 1 if verdict else 0
            counters["duration_ms_total"] += obs.duration_ms
            counters[bucket_field(obs.duration_ms)] += 1
            self.tool_last_seen[key] = max(self.tool_last_seen.get(key, obs.started_at), obs.started_at)
        if obs.is_model_call or (obs.model and (obs.input_tokens or obs.output_tokens) and not obs.is_tool_call):
            counters = self.models[(obs.agent, obs.model, obs.environment, day)]
            counters["calls"] += 1 if obs.is_model_call else 0
            counters["errors"] += 1 if obs.error_type and obs.is_model_call else 0
            if obs.operation != "invoke_agent":
                counters["input_tokens"] += obs.input_tokens
                counters["output_tokens"] += obs.output_tokens

    def _check_call(self, obs: Observation, agent: KnownAgent | None, tool: Any, tool_key: str, capability: str) -> str:
        if agent is None:
            self.finding(
                obs,
                agent=obs.agent,
                tool=tool_key,
                kind=Finding.Kind.UNKNOWN_AGENT,
                capability=capability,
                detail=f"agent {obs.agent!r} is not in the catalog; it called {tool_key} {capability}".strip(),
            )
            return Finding.Kind.UNKNOWN_AGENT
        if tool is None:
            self.finding(
                obs,
                agent=agent.name,
                tool=tool_key,
                kind=Finding.Kind.UNKNOWN_TOOL,
                capability=capability,
                detail=f"{agent.name} called {tool_key!r}, which is not a tool in the catalog",
            )
            return Finding.Kind.UNKNOWN_TOOL
        decision = decide(
            agent=agent.name,
            tool=tool.name,
            capability=capability or None,
            environment=obs.environment,
            grants=self.view.grants.get((agent.id, tool.id), ()),
            now=obs.started_at,
        )
        if decision.allowed:
            return ""
        kind = decision.verdict.value
        self.finding(obs, agent=agent.name, tool=tool.name, kind=kind, capability=capability, detail=decision.reason)
        if tool.risk_tier == "critical" and decision.verdict != Verdict.GRANT_PENDING:
            self.findings[(agent.name, tool.name, kind)].severity = Finding.Severity.CRITICAL
        return kind


TOOL_KEY = ("agent_key", "tool_key", "capability", "environment", "day")
TOOL_COUNTS = ("calls", "errors", "denied", "duration_ms_total", *BUCKET_FIELDS)
MODEL_KEY = ("agent_key", "model", "environment", "day")
MODEL_COUNTS = ("calls", "errors", "input_tokens", "output_tokens")
SPAN_COLUMNS = (
    "received_at",
    "started_at",
    "trace_id",
    "span_id",
    "agent_key",
    "tool_key",
    "capability",
    "environment",
    "operation",
    "model",
    "duration_ms",
    "error_type",
    "input_tokens",
    "output_tokens",
    "verdict",
    "token_id",
)


def _write_usage(batch: _Batch) -> None:
    add_counts_many(
        ToolUsageDaily,
        key_fields=TOOL_KEY,
        count_fields=TOOL_COUNTS,
        latest_fields=("last_seen",),
        rows=[
            (*key, *(counters.get(name, 0) for name in TOOL_COUNTS), batch.tool_last_seen[key])
            for key, counters in batch.tools.items()
        ],
    )
    add_counts_many(
        ModelUsageDaily,
        key_fields=MODEL_KEY,
        count_fields=MODEL_COUNTS,
        rows=[(*key, *(counters.get(name, 0) for name in MODEL_COUNTS)) for key, counters in batch.models.items()],
    )


def ingest(*, spans: list[SpanFacts], token: ApiToken | None) -> IngestResult:
    """Write one batch. Raises django.db.DatabaseError when the database cannot take it (the caller answers 429)."""
    result = IngestResult()
    observations = []
    for facts in spans:
        if not is_genai(facts):
            result.ignored += 1
            continue
        observation = observe(facts)
        if not observation.agent:
            result.ignored += 1
            continue
        observations.append(observation)
    if not observations:
        return result
    view = catalog_view(observations)
    bound = None
    if token is not None and token.bound_agent_id is not None:
        bound = KnownAgent(token.bound_agent_id, token.subject, "")
        for known in view.agents.values():
            if known.id == token.bound_agent_id:
                bound = known
    batch = _Batch(view, token, bound)
    for observation in observations:
        batch.take(observation)
    with transaction.atomic():
        copy_rows(SpanRecord, SPAN_COLUMNS, batch.spans)
        _write_usage(batch)
        for (agent, tool, kind), group in sorted(batch.findings.items()):
            opened = findings.finding_record(
                agent_key=agent,
                tool_key=tool,
                kind=kind,
                count=group.count,
                first_seen=group.first_seen or timezone.now(),
                last_seen=group.last_seen or timezone.now(),
                capability=group.capability,
                environment=group.environment,
                detail=group.detail,
                severity=group.severity,
                owner_team=group.owner,
                agent_id=group.agent_id,
            )
            if opened is not None:
                result.findings_opened.append(opened)
    result.accepted = len(observations)
    return result
