from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are append-only: they cannot be deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")


class AuditEvent(models.Model):
    """One state change. Inserted without any lock, ordered by its id; the sealer (portal.audit.audit_seal) then
    gives it its place in the hash chain (sequence, the previous event's hash, its own hash), once. Editing or
    removing a sealed row breaks the chain, and the signed checkpoints catch a rewrite of the chain itself, which
    `manage.py audit_verify` detects."""

    class ActorKind(models.TextChoices):
        USER = "user"
        TOKEN = "token"
        SYSTEM = "system"

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    # Plain values, not foreign keys: deleting a user must never rewrite history.
    actor_user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_label = models.CharField(max_length=200)
    actor_token_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100)
    object_repr = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    # Set once by the sealer (the database refuses any other update); empty until then.
    sequence = models.PositiveBigIntegerField(unique=True, null=True, blank=True)
    prev_hash = models.CharField(max_length=64, null=True, blank=True)
    hash = models.CharField(max_length=64, null=True, blank=True)  # unique by Meta.constraints

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "-id"], name="audit_object_id_idx"),
            models.Index(fields=["id"], condition=models.Q(hash__isnull=True), name="audit_unsealed_idx"),
        ]
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_hash_unique")]

    def __str__(self) -> str:
        return f"#{self.sequence or self.pk} {self.action} {self.object_type}:{self.object_id} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are append-only: they cannot be deleted.")


class AuditChainHead(models.Model):
    """The sealer's position: the last sealed event (its chain sequence, hash and id). Only sealers lock it."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
    last_event_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit head #{self.last_sequence}"


class AuditCheckpointQuerySet(models.QuerySet["AuditCheckpoint"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit checkpoints are append-only: they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit checkpoints are append-only: they cannot be deleted.")


class AuditCheckpoint(models.Model):
    """The chain head after a seal, signed with AUDIT_SIGNING_KEY (which the database does not hold); each one is
    also appended to a file outside the database (AUDIT_CHECKPOINT_PATH)."""

    sequence = models.PositiveBigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    event_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=64)

    objects = AuditCheckpointQuerySet.as_manager()

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"checkpoint #{self.sequence}"


class ApiToken(models.Model):
    """A bearer token. Only a SHA-256 digest of the secret is stored; the secret is shown once at creation."""

    class Kind(models.TextChoices):
        PERSONAL = "personal"
        TEAM = "team"
        AGENT = "agent"

    class Scope(models.TextChoices):
        READ = "read"
        WRITE = "write"
        REVIEW = "review"
        ADMIN = "admin"
        TELEMETRY = "telemetry"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PERSONAL)
    # The identity the token acts as: the person, or the service account of a team or an agent.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    subject = models.CharField(max_length=100, blank=True, help_text="Team or agent name for non-personal tokens.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="issued_api_tokens")
    key_prefix = models.CharField(max_length=16, unique=True)
    key_digest = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The catalog agent an agent's own token speaks for (its id; `subject` holds its name). A plain value, not a
    # foreign key: the portal core knows nothing of the catalog. Null: the token is not bound to an agent.
    bound_agent_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="token_expiry_after_creation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"


class WorkerHeartbeat(models.Model):
    """Written by a periodic task, so the portal can tell whether a worker is consuming the queue."""

    hostname = models.CharField(max_length=200, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"


class OidcIdentity(models.Model):
    """Who a person is at the identity provider: (issuer, subject). Single sign-on finds people by this pair, never
    by e-mail address, so an address reused or changed at the provider cannot take over another account."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities")
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    last_login_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="one_user_per_oidc_subject")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
