from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from portal.context import current_channel

DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
dns_label_validator = RegexValidator(
    DNS_LABEL_RE,
    "Use a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit, "
    "at most 63 characters.",
    code="dns_label",
)


class DataClass(models.TextChoices):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class RiskTier(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Lifecycle(models.TextChoices):
    EXPERIMENTAL = "experimental"
    PRODUCTION = "production"
    DEPRECATED = "deprecated"


class Team(models.Model):
    """An owner of things, backed by two groups so object permissions can go to all members or maintainers."""

    name = models.CharField(max_length=63, validators=[dns_label_validator])
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    email = models.EmailField(blank=True)
    chat_webhook_url = models.URLField(blank=True, help_text="Slack-compatible incoming webhook for notifications.")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    members_group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team_as_members")
    maintainers_group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team_as_maintainers")
    source_key = models.CharField(max_length=300, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="team_name_unique_ci")]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.title or self.name


class TeamMembership(models.Model):
    class Role(models.TextChoices):
        MAINTAINER = "maintainer"
        MEMBER = "member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class AIModel(models.Model):
    class Hosting(models.TextChoices):
        SAAS = "saas"
        SELF_HOSTED = "self_hosted"

    name = models.CharField(max_length=63, validators=[dns_label_validator])
    title = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    model_id = models.CharField(max_length=200, blank=True)
    hosting = models.CharField(max_length=20, choices=Hosting.choices, blank=True)
    residency = models.CharField(max_length=100, blank=True, help_text="Where data is processed, e.g. EU.")
    data_class = models.CharField(
        max_length=20,
        choices=DataClass.choices,
        blank=True,
        help_text="Highest data class it is cleared for.",
    )
    source_key = models.CharField(max_length=300, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"
        constraints = [models.UniqueConstraint(Lower("name"), name="model_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    """Where descriptors come from; synced on a schedule. Entities keep a link to the location that made them."""

    class Kind(models.TextChoices):
        URL = "url"
        GIT = "git"
        UPLOAD = "upload"

    class Outcome(models.TextChoices):
        NEVER = "never"
        OK = "ok"
        PARTIAL = "partial"
        FAILED = "failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    target = models.CharField(max_length=2000, help_text="URL, git repository URL or upload name.")
    path = models.CharField(max_length=500, blank=True, help_text="File or folder inside a git repository.")
    default_owner = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.NEVER)
    last_report = models.JSONField(default=dict, blank=True)
    sync_claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["target"]
        constraints = [models.UniqueConstraint(fields=["kind", "target", "path"], name="location_unique_target")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}{'#' + self.path if self.path else ''}"


class EntitySource(models.TextChoices):
    """Which door created an entity; with `source_location` (a location) or `source_key` (the file, upload or
    scaffolder run, "name#document") it names the one source that may change it (catalog.sources)."""

    LOCATION = "location"
    FILE = "file", "file import (command line)"
    IMPORT = "import", "import (web or API upload)"
    SCAFFOLDER = "scaffolder"
    UI = "ui", "web UI"
    API = "api"
    CLI = "cli", "command line"
    UNRECORDED = "", "unrecorded"


def current_entity_source() -> str:
    """What the current request or command creates comes from its door (portal.context); imports set their own."""
    channel = current_channel()
    return channel if channel in {EntitySource.UI, EntitySource.API, EntitySource.CLI} else EntitySource.UNRECORDED


class CatalogEntity(models.Model):
    """Fields every agent and tool shares."""

    name = models.CharField(max_length=63, validators=[dns_label_validator])
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True, help_text="Markdown; sanitised when shown.")
    owner = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="%(class)ss")
    lifecycle = models.CharField(max_length=20, choices=Lifecycle.choices, default=Lifecycle.EXPERIMENTAL)
    version = models.CharField(max_length=100, blank=True)
    repository_url = models.URLField(max_length=500, blank=True)
    data_class = models.CharField(
        max_length=20,
        choices=DataClass.choices,
        null=True,
        blank=True,
        help_text="Unknown counts as restricted.",
    )
    tags = models.JSONField(default=list, blank=True)
    links = models.JSONField(default=list, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    # Indexed by Meta.indexes of Agent and Tool: db_index=True on a CharField also builds a LIKE index on PostgreSQL
    # (varchar_pattern_ops) that no query uses and every write, an import's COPY above all, has to maintain.
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.CRITICAL)
    risk_score = models.PositiveSmallIntegerField(default=16)
    risk = models.JSONField(default=dict, blank=True, help_text="The assessment: factors, floors, rubric version.")
    source_location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_key = models.CharField(max_length=300, blank=True)
    source_kind = models.CharField(
        max_length=12, choices=EntitySource.choices, blank=True, default=current_entity_source
    )
    orphaned = models.BooleanField(default=False, help_text="Vanished from its location; kept, never auto-deleted.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.title or self.name

    @property
    def risk_explanation(self) -> str:
        return str(self.risk.get("explanation", self.risk_tier))


class Agent(CatalogEntity):
    class Status(models.TextChoices):
        DRAFT = "draft"
        ONBOARDING = "onboarding"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        RETIRED = "retired"

    class AgentType(models.TextChoices):
        CODING = "coding"
        CODE_REVIEW = "code_review", "code review"
        SRE = "sre", "SRE/ops"
        BUSINESS = "business"
        OTHER = "other"

    class Autonomy(models.IntegerChoices):
        ASSISTED = 1, "1 · assisted"
        AUGMENTED = 2, "2 · augmented"
        SPEC_CENTRIC = 3, "3 · spec-centric"
        SELECTIVE = 4, "4 · selective autonomy"
        FULL = 5, "5 · full autonomy"

    class HumanInLoop(models.TextChoices):
        PER_ACTION = "per_action", "approval per action"
        SAMPLED = "sampled", "sampled or after-the-fact review"
        NONE = "none", "none"

    class Runtime(models.TextChoices):
        KUBERNETES = "kubernetes"
        CI = "ci", "CI"
        WORKSTATION = "workstation"
        SAAS = "saas", "SaaS"
        SERVERLESS = "serverless"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    agent_type = models.CharField(max_length=20, choices=AgentType.choices, default=AgentType.OTHER)
    autonomy_level = models.PositiveSmallIntegerField(
        choices=Autonomy.choices,
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Unknown counts as 5.",
    )
    human_in_loop = models.CharField(max_length=20, choices=HumanInLoop.choices, null=True, blank=True)
    runtime = models.CharField(max_length=20, choices=Runtime.choices, blank=True)
    models_used = models.ManyToManyField(AIModel, blank=True, related_name="agents")
    calls = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="called_by")
    a2a_endpoint = models.URLField(max_length=500, blank=True)
    a2a_protocol_version = models.CharField(max_length=20, blank=True)
    provider_org = models.CharField(max_length=200, blank=True)
    environments = models.JSONField(default=list, blank=True)
    skills = models.JSONField(default=list, blank=True)
    requested_tools = models.JSONField(default=list, blank=True, help_text="Tool names the descriptor asks for.")
    # Not a column: what catalog.services.agent_update held for approval instead of writing (HeldChange: raising
    # autonomy to 4 or 5); set on the agent that function returns.
    held_changes: list[Any]

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="agent_name_unique_ci"),
            models.CheckConstraint(
                condition=models.Q(autonomy_level__isnull=True)
                | models.Q(autonomy_level__gte=1, autonomy_level__lte=5),
                name="agent_autonomy_1_to_5",
            ),
        ]
        permissions = [("attest_agent", "Can attest facts of an agent")]
        indexes = [
            models.Index(fields=["name"], name="agent_name_idx"),
            *(
                models.Index(fields=[field], name=f"agent_{field}_idx")
                for field in ("risk_tier", "status", "source_key")
            ),
        ]


class Tool(CatalogEntity):
    class Kind(models.TextChoices):
        MCP_SERVER = "mcp_server", "MCP server"
        HTTP_API = "http_api", "HTTP API"
        CLI = "cli", "CLI"
        SAAS = "saas", "SaaS"

    class Status(models.TextChoices):
        DRAFT = "draft"
        PENDING_REVIEW = "pending_review", "pending review"
        APPROVED = "approved"
        REJECTED = "rejected"
        DEPRECATED = "deprecated"

    class Transport(models.TextChoices):
        STDIO = "stdio"
        STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"
        SSE = "sse", "SSE"
        HTTP = "http", "HTTP"

    class AuthScheme(models.TextChoices):
        NONE = "none"
        API_KEY = "api_key", "API key"
        BEARER = "bearer"
        OAUTH2 = "oauth2", "OAuth 2"
        BASIC = "basic"
        MTLS = "mtls", "mTLS"

    class CredentialScope(models.TextChoices):
        NONE = "none"
        DELEGATED = "delegated", "per-user delegated, short-lived"
        SHARED = "shared", "shared service account or broad scopes"
        ADMIN = "admin", "admin or organisation-wide long-lived"

    class Reach(models.TextChoices):
        CLOSED = "closed"
        ALLOWLISTED = "allowlisted", "allowlisted hosts"
        OPEN_WORLD = "open_world", "open world or untrusted content"

    registry_name = models.CharField(max_length=200, null=True, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MCP_SERVER)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    endpoint_url = models.URLField(max_length=500, blank=True)
    transport = models.CharField(max_length=20, choices=Transport.choices, blank=True)
    auth_scheme = models.CharField(max_length=20, choices=AuthScheme.choices, blank=True)
    credential_scope = models.CharField(max_length=20, choices=CredentialScope.choices, null=True, blank=True)
    reach = models.CharField(max_length=20, choices=Reach.choices, null=True, blank=True)
    annotations_trusted = models.BooleanField(
        default=False,
        help_text="Capability hints count only when the tool is verified or a reviewer attested them.",
    )
    capabilities_hash = models.CharField(max_length=64, blank=True)
    secret_names = models.JSONField(default=list, blank=True, help_text="Names of declared secrets; never values.")
    packages = models.JSONField(default=list, blank=True)
    remotes = models.JSONField(default=list, blank=True)
    definition = models.TextField(blank=True, help_text="OpenAPI definition for HTTP APIs.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="tool_name_unique_ci"),
            models.UniqueConstraint(fields=["registry_name"], name="tool_registry_name_unique"),
        ]
        permissions = [("attest_tool", "Can attest the capability hints of a tool")]
        indexes = [
            models.Index(fields=["name"], name="tool_name_idx"),
            *(
                models.Index(fields=[field], name=f"tool_{field}_idx")
                for field in ("risk_tier", "kind", "status", "source_key")
            ),
        ]


class Capability(models.Model):
    """One operation of a tool, with MCP-style hints. None means the descriptor did not say (worst case)."""

    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="capabilities")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    read_only = models.BooleanField(null=True)
    destructive = models.BooleanField(null=True)
    idempotent = models.BooleanField(null=True)
    open_world = models.BooleanField(null=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tool", "name"], name="capability_unique_per_tool")]

    def __str__(self) -> str:
        return f"{self.tool.name}.{self.name}"


class ToolGrant(models.Model):
    """What lets an agent call a tool (optionally a subset of its capabilities) in one environment."""

    class Status(models.TextChoices):
        REQUESTED = "requested"
        APPROVED = "approved"
        DENIED = "denied"
        REVOKED = "revoked"
        EXPIRED = "expired"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="grants")
    tool = models.ForeignKey(Tool, on_delete=models.PROTECT, related_name="grants")
    environment = models.CharField(max_length=63, validators=[dns_label_validator], default="production")
    # What the grant covers. A request may leave it empty ("every capability the tool has when approved"); approval
    # freezes it to those names, and an approved grant with an empty list covers nothing (catalog.grant_rules).
    capability_names = models.JSONField(
        default=list, blank=True, help_text="Capabilities covered; frozen when approved. Empty covers nothing."
    )
    credential_scope = models.CharField(
        max_length=20,
        choices=Tool.CredentialScope.choices,
        null=True,
        blank=True,
        help_text="Overrides the tool's.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.CRITICAL, db_index=True)
    risk_score = models.PositiveSmallIntegerField(default=16)
    risk = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent__name", "tool__name", "environment"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "tool", "environment"], name="one_grant_per_agent_tool_env")
        ]

    def __str__(self) -> str:
        return f"{self.agent.name} → {self.tool.name} ({self.environment})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.APPROVED and (self.expires_at is None or self.expires_at > timezone.now())


class HintsAttestation(models.Model):
    """A security reviewer vouched for a tool's capability hints, with the live server's own answer as evidence.

    Only the newest valid attestation whose capabilities hash is the tool's current one counts; any change of the
    capabilities invalidates it (and `Tool.annotations_trusted` falls back to False)."""

    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="hints_attestations")
    attested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    attested_at = models.DateTimeField(default=timezone.now)
    capabilities_hash = models.CharField(max_length=64, help_text="The capabilities (names and hints) attested.")
    declared = models.JSONField(default=list, help_text="The capabilities with their hints, as declared.")
    observed = models.JSONField(
        null=True, blank=True, help_text="The tools and hints the live MCP server listed; null when not introspected."
    )
    observed_note = models.CharField(max_length=500, blank=True, help_text="Why nothing was observed, if so.")
    server = models.JSONField(default=dict, blank=True, help_text="Server name, version and protocol, if observed.")
    differences = models.JSONField(default=list, blank=True, help_text="Declared vs observed, one sentence each.")
    comment = models.TextField(blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidated_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-attested_at", "-pk"]
        indexes = [models.Index(fields=["tool", "-attested_at"], name="hints_attestation_tool_idx")]

    def __str__(self) -> str:
        return f"hints of {self.tool_id} attested {self.attested_at:%Y-%m-%d}"

    @property
    def is_valid(self) -> bool:
        return self.invalidated_at is None


class CatalogEntry(models.Model):
    """A denormalised search row per agent and tool, written in the same transaction as the entity, so the
    catalog page can filter, facet, sort and page over one indexed table."""

    class Kind(models.TextChoices):
        AGENT = "agent"
        TOOL = "tool"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    entity_id = models.BigIntegerField()
    name = models.CharField(max_length=63)
    title = models.CharField(max_length=200, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    owner = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices)
    risk_rank = models.PositiveSmallIntegerField(default=0)
    risk_explanation = models.CharField(max_length=500, blank=True)
    lifecycle = models.CharField(max_length=20)
    status = models.CharField(max_length=20)
    autonomy_level = models.PositiveSmallIntegerField(null=True)
    data_class = models.CharField(max_length=20, blank=True)
    tool_kind = models.CharField(max_length=20, blank=True)
    tags = models.JSONField(default=list)
    # Short text (names, titles, tags, capability names): on PostgreSQL its words are the vocabulary typos are
    # corrected against; long text (plus descriptions) for full-text search. On PostgreSQL both feed the search
    # tables of migration 0004 through triggers; SQLite searches search_text itself.
    search_names = models.CharField(max_length=2000, blank=True)
    search_text = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "entity_id"], name="catalog_entry_unique")]
        # On PostgreSQL the catalog page searches, sorts and filters catalog_search_row (migration 0004), so this
        # table keeps only the index the dashboard's count by tier reads: every other one cost each import and
        # status change an index write that no query used (migration 0006). SQLite's small catalogs scan.
        indexes = [models.Index(fields=["risk_tier", "name"], name="catalog_entry_tier")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class ImportRun(models.Model):
    """An import too large to run inside a web request (IMPORT_INLINE_MAX_BYTES): a Celery worker runs it, the UI
    and API show its phase and, when done, its report. The uploaded inputs are kept only until it ends."""

    class State(models.TextChoices):
        QUEUED = "queued"
        PARSING = "parsing"
        WRITING = "writing"
        DONE = "done"
        FAILED = "failed"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    dry_run = models.BooleanField(default=False)
    adopt = models.BooleanField(default=False)
    default_owner = models.CharField(max_length=63, blank=True)
    files = models.PositiveIntegerField(default=0)
    input_bytes = models.PositiveBigIntegerField(default=0)
    entities = models.PositiveIntegerField(default=0)  # parsed, known once parsing ends
    report = models.JSONField(null=True, blank=True)
    problem = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_by", "-created_at"], name="catalog_import_run_by")]

    def __str__(self) -> str:
        return f"import run {self.pk} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)


class ImportRunInput(models.Model):
    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="inputs")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=255)
    content = models.BinaryField()

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.name} (import run {self.run_id})"
