from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from catalog.models import Agent, RiskTier, Team, Tool, ToolGrant

OPEN_STATES = ("draft", "checking", "in_review", "changes_requested")


class ApprovalPolicy(models.Model):
    """How deep review goes for one risk tier. Data, edited by platform admins; requests keep a snapshot."""

    tier = models.CharField(max_length=10, choices=RiskTier.choices, unique=True)
    auto_approve = models.BooleanField(default=False, help_text="Approve after passing checks, without people.")
    requires_attestation = models.BooleanField(default=False, help_text="The owner attests the descriptor is true.")
    validity_days = models.PositiveIntegerField(default=365, help_text="How long an approval lasts.")
    exclude_owning_team = models.BooleanField(default=False, help_text="Nobody from the owning team may approve.")
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "approval policies"
        ordering = ["tier"]

    def __str__(self) -> str:
        return f"{self.tier} policy"


class PolicyStage(models.Model):
    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="stages")
    order = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=80, help_text="Group whose members may decide this stage.")
    sla_hours = models.PositiveIntegerField(default=48)

    class Meta:
        ordering = ["policy", "order"]
        constraints = [models.UniqueConstraint(fields=["policy", "order"], name="stage_order_unique")]

    def __str__(self) -> str:
        return f"{self.policy.tier} #{self.order} {self.name}"


class ApprovalRequest(models.Model):
    class Kind(models.TextChoices):
        AGENT_ONBOARDING = "agent_onboarding", "agent onboarding"
        TOOL_ONBOARDING = "tool_onboarding", "tool onboarding"
        TOOL_GRANT = "tool_grant", "tool access grant"
        RECERTIFICATION = "recertification"
        RE_REVIEW = "re_review", "re-review after a riskier change"
        AUTONOMY_CHANGE = "autonomy_change", "autonomy change"

    class State(models.TextChoices):
        DRAFT = "draft"
        CHECKING = "checking"
        IN_REVIEW = "in_review", "in review"
        CHANGES_REQUESTED = "changes_requested", "changes requested"
        APPROVED = "approved"
        REJECTED = "rejected"
        WITHDRAWN = "withdrawn"
        EXPIRED = "expired"

    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT, db_index=True)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="approval_requests")
    tool = models.ForeignKey(Tool, null=True, blank=True, on_delete=models.CASCADE, related_name="approval_requests")
    grant = models.ForeignKey(
        ToolGrant, null=True, blank=True, on_delete=models.CASCADE, related_name="approval_requests"
    )
    # "agent:<id>", "tool:<id>" or "grant:<id>": one open request per subject and kind (partial unique index).
    subject_key = models.CharField(max_length=40, db_index=True)
    title = models.CharField(max_length=300)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests")
    owning_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="approval_requests")
    tier = models.CharField(max_length=10, choices=RiskTier.choices, db_index=True)
    risk = models.JSONField(default=dict, help_text="The assessment at submission (or after re-scoring).")
    # The facts under review (catalog.fingerprints, flat) and their fingerprint. A change of the subject's facts
    # while the request is open starts a new round on the new facts; a decision must name this fingerprint.
    bound_facts = models.JSONField(default=dict)
    facts_fingerprint = models.CharField(max_length=64, blank=True)
    policy_snapshot = models.JSONField(default=dict)
    # What an autonomy change asks for, {field: {"before", "after"}}: the catalog holds it until the request is
    # approved, and the request is checked, scored and fingerprinted on the facts as they would be.
    proposed_changes = models.JSONField(default=dict, blank=True)
    round = models.PositiveSmallIntegerField(default=1)
    current_stage = models.PositiveSmallIntegerField(default=0)
    # The group that decides the current stage, denormalised from the snapshot so queues are one indexed query.
    current_role = models.CharField(max_length=80, blank=True, db_index=True)
    # What each round looked like when submitted, so a resubmission shows what changed since the last review.
    round_snapshots = models.JSONField(default=list, blank=True)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attested_at = models.DateTimeField(null=True, blank=True)
    justification = models.TextField(blank=True)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    recertification_opened = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # Not columns: the subject's tool or agent row as approvals.services._locked locked it (what a status change
    # reads and writes of it), on a tool's or an agent's request that function returned; None otherwise.
    locked_tool: Tool | None = None
    locked_agent: Agent | None = None

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject_key", "kind"],
                condition=Q(state__in=OPEN_STATES),
                name="one_open_request_per_subject_and_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "due_at"], name="request_queue_idx"),
            models.Index(fields=["requester", "-created_at"], name="request_requester_idx"),
        ]
        permissions = [("manage_policies", "Can edit approval policies")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def stages(self) -> list[dict]:
        return list(self.policy_snapshot.get("stages", []))

    @property
    def stage(self) -> dict | None:
        stages = self.stages
        return (
            stages[self.current_stage]
            if self.state == self.State.IN_REVIEW and self.current_stage < len(stages)
            else None
        )


class CheckRun(models.Model):
    """One automated check for one round of a request. Claimed with a lease so a re-delivered task after a
    killed worker runs it again, while a duplicate delivery during a live run does nothing."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        PASSED = "passed"
        FAILED = "failed"
        ERROR = "error"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="checks")
    round = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=50)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    summary = models.CharField(max_length=500, blank=True)
    output = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "round", "name"]
        constraints = [models.UniqueConstraint(fields=["request", "round", "name"], name="one_check_per_round")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class Decision(models.Model):
    class Outcome(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"
        REQUEST_CHANGES = "request_changes", "request changes"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    round = models.PositiveSmallIntegerField()
    stage_index = models.PositiveSmallIntegerField()
    stage_name = models.CharField(max_length=100)
    # The database refuses a reviewer who is the request's requester: a trigger reads the request's row
    # (migration 0003), so no copied column can disagree with it.
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    comment = models.TextField(blank=True)
    # The fingerprint of the facts the reviewer saw (always the request's current one: others are refused).
    facts_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["request", "round", "stage_index"]
        constraints = [
            models.UniqueConstraint(fields=["request", "round", "reviewer"], name="one_decision_per_person_per_round"),
            models.UniqueConstraint(fields=["request", "round", "stage_index"], name="one_decision_per_stage"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.outcome} #{self.request_id} stage {self.stage_index}"


class Notification(models.Model):
    """An outbound message. The dedupe key makes every notification exactly-once per event and recipient,
    whatever the number of beats, retries or re-deliveries."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"

    request = models.ForeignKey(
        ApprovalRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(max_length=40)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(max_length=500, help_text="E-mail address or webhook URL.")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    dedupe_key = models.CharField(max_length=300, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} via {self.channel} to {self.target} ({self.status})"


class NotificationPreference(models.Model):
    """Per user (e-mail) or per team (chat webhook) choice of which events to receive."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_preference",
    )
    team = models.OneToOneField(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email_enabled = models.BooleanField(default=True)
    chat_enabled = models.BooleanField(default=True)
    muted_events = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(team__isnull=True))
                | (Q(user__isnull=True) & Q(team__isnull=False)),
                name="preference_for_user_or_team",
            )
        ]

    def __str__(self) -> str:
        return f"preferences of {self.user or self.team}"
