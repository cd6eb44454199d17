"""Telemetry as the portal keeps it: short-lived raw spans (minimal columns, never content), daily counters,
findings, evaluation results, scorecards and daily KPI snapshots. Entities are named, not foreign-keyed: telemetry
names agents and tools the catalog may not know (shadow AI), and history must survive a deleted entity."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from runtime.histogram import BUCKET_FIELDS


class SpanRecord(models.Model):
    """One received span, kept RUNTIME_SPAN_RETENTION_DAYS for drill-down, then pruned by beat."""

    received_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField()
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    agent_key = models.CharField(max_length=200)
    tool_key = models.CharField(max_length=200, blank=True)
    capability = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=63)
    operation = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=200, blank=True)
    duration_ms = models.FloatField(default=0)
    error_type = models.CharField(max_length=200, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    verdict = models.CharField(max_length=40, blank=True, help_text="The grant rule's verdict for a tool call.")
    token_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["received_at"], name="runtime_span_received"),
            models.Index(fields=["agent_key", "-started_at"], name="runtime_span_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_key} {self.operation} {self.tool_key}.{self.capability}"


class ToolUsageDaily(models.Model):
    """Calls of one agent to one capability of one tool in one environment on one day (UTC)."""

    day = models.DateField()
    agent_key = models.CharField(max_length=200)
    tool_key = models.CharField(max_length=200)
    capability = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=63)
    calls = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    denied = models.PositiveBigIntegerField(default=0, help_text="Calls the grant rule would not have allowed.")
    duration_ms_total = models.FloatField(default=0)
    last_seen = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agent_key", "tool_key", "capability", "environment", "day"], name="runtime_tool_usage_key"
            )
        ]
        indexes = [
            models.Index(fields=["day", "agent_key"], name="runtime_tool_usage_day"),
            # A tool's callers (its catalog page): without it, a scan of every agent's rows.
            models.Index(fields=["tool_key", "day"], name="runtime_tool_usage_tool"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.agent_key} -> {self.tool_key}.{self.capability} ({self.environment})"


for _field in BUCKET_FIELDS:
    ToolUsageDaily.add_to_class(_field, models.PositiveBigIntegerField(default=0))


class ModelUsageDaily(models.Model):
    """Model calls and tokens of one agent on one day (UTC)."""

    day = models.DateField()
    agent_key = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    environment = models.CharField(max_length=63)
    calls = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent_key", "model", "environment", "day"], name="runtime_model_usage_key")
        ]
        indexes = [models.Index(fields=["day", "agent_key"], name="runtime_model_usage_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.agent_key} {self.model}"


class Finding(models.Model):
    """What telemetry shows against the catalog. One open finding per (agent, tool, kind)."""

    class Kind(models.TextChoices):
        NO_GRANT = "no_grant", "call with no grant"
        ENVIRONMENT_NOT_GRANTED = "environment_not_granted", "environment not granted"
        CAPABILITY_NOT_GRANTED = "capability_not_granted", "capability outside the grant"
        GRANT_PENDING = "grant_pending", "grant not approved yet"
        GRANT_DENIED = "grant_denied", "grant was denied"
        GRANT_REVOKED = "grant_revoked", "call after revocation"
        GRANT_EXPIRED = "grant_expired", "call after expiry"
        UNKNOWN_AGENT = "unknown_agent", "unknown agent (shadow AI)"
        UNKNOWN_TOOL = "unknown_tool", "unknown tool"
        TOKEN_AGENT_MISMATCH = "token_agent_mismatch", "token claims another agent"

    class State(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"
        ACCEPTED = "accepted"
        GRANT_REQUESTED = "grant_requested", "turned into a grant request"

    class Severity(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"
        CRITICAL = "critical"

    agent_key = models.CharField(max_length=200)
    tool_key = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=40, choices=Kind.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.HIGH)
    owner_team = models.CharField(max_length=63, blank=True, help_text="The agent's owning team when known.")
    capability = models.CharField(max_length=200, blank=True, help_text="The last capability called.")
    environment = models.CharField(max_length=63, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    count = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True, help_text="Why it was accepted or resolved.")
    grant_id = models.BigIntegerField(null=True, blank=True, help_text="The grant it was turned into.")

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent_key", "tool_key", "kind"],
                condition=models.Q(state="open"),
                name="runtime_one_open_finding",
            )
        ]
        indexes = [
            models.Index(fields=["state", "-last_seen"], name="runtime_finding_state"),
            models.Index(fields=["agent_key", "state"], name="runtime_finding_agent"),
            models.Index(fields=["tool_key", "state"], name="runtime_finding_tool"),
            models.Index(fields=["created_at"], name="runtime_finding_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.agent_key} -> {self.tool_key or '-'} ({self.state})"


class Evaluation(models.Model):
    """An eval result reported by an agent's CI (`POST /api/v1/agents/{name}/evaluations/`)."""

    agent_name = models.CharField(max_length=63)
    suite = models.CharField(max_length=200)
    passed = models.BooleanField()
    score = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    version = models.CharField(max_length=100, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    run_url = models.URLField(max_length=500, blank=True)
    reported_at = models.DateTimeField(default=timezone.now)
    reported_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-reported_at"]
        indexes = [models.Index(fields=["agent_name", "-reported_at"], name="runtime_eval_agent")]

    def __str__(self) -> str:
        return f"{self.agent_name} {self.suite} {'pass' if self.passed else 'fail'}"


class Scorecard(models.Model):
    """The level an entity reached (bronze, silver, gold) and each rule's outcome; computed by beat."""

    kind = models.CharField(max_length=10)  # agent or tool
    name = models.CharField(max_length=63)
    level = models.CharField(max_length=10, blank=True, help_text="Highest level whose rules all pass; empty: none.")
    rules = models.JSONField(default=list)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="runtime_scorecard_entity")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name} {self.level or 'none'}"


class KpiSnapshot(models.Model):
    """One row per day and figure (e.g. agents by tier), written by beat, so charts over time read few rows."""

    day = models.DateField()
    figure = models.CharField(max_length=60)
    label = models.CharField(max_length=200)
    value = models.FloatField()

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["day", "figure", "label"], name="runtime_kpi_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.figure}/{self.label}={self.value}"
