"""Golden-path templates, their recorded versions, and scaffolding runs with one row per step."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from catalog.models import Agent, Tool, dns_label_validator


class GoldenPathTemplate(models.Model):
    """A golden path the portal offers. Its descriptive fields mirror the latest recorded version."""

    class Source(models.TextChoices):
        BUILTIN = "builtin", "built in"
        GIT = "git", "git repository"

    name = models.CharField(max_length=63, unique=True, validators=[dns_label_validator])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    version = models.CharField(max_length=100, help_text="The latest recorded version.")
    owner = models.CharField(max_length=63, help_text="The team that maintains the template.")
    tags = models.JSONField(default=list, blank=True)
    parameters_schema = models.JSONField(default=dict, help_text="JSON Schema of the parameters (latest version).")
    steps = models.JSONField(default=list, help_text="The portal actions a run performs, in order.")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.BUILTIN)
    builtin_folder = models.CharField(max_length=200, blank=True, help_text="Folder under golden_paths/.")
    git_url = models.CharField(max_length=2000, blank=True)
    git_ref = models.CharField(max_length=200, blank=True)
    git_path = models.CharField(max_length=500, blank=True, help_text="Template folder inside the repository.")
    latest = models.ForeignKey("TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    enabled = models.BooleanField(default=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class TemplateVersion(models.Model):
    """One recorded version of a template, with its files, so old versions can be re-rendered for updates."""

    template = models.ForeignKey(GoldenPathTemplate, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=100)
    git_commit = models.CharField(max_length=64, blank=True, help_text="Commit the files came from (git sources).")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 over the template's paths and contents.")
    files = models.JSONField(default=dict, help_text="Template folder contents: relative path -> base64.")
    parameters_schema = models.JSONField(default=dict)
    steps = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template__name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["template", "version", "git_commit"], name="template_version_unique")
        ]

    def __str__(self) -> str:
        commit = f" @{self.git_commit[:12]}" if self.git_commit else ""
        return f"{self.template.name} {self.version}{commit}"


class ScaffoldRun(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Publisher(models.TextChoices):
        NONE = "none", "download only"
        GIT = "git", "git remote"
        GITHUB = "github", "GitHub"
        GITLAB = "gitlab", "GitLab"

    template_version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="runs")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="scaffold_runs")
    values = models.JSONField(default=dict, help_text="The validated parameter values, defaults filled in.")
    publisher = models.CharField(max_length=10, choices=Publisher.choices, default=Publisher.NONE)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    current_step = models.CharField(max_length=63, blank=True)
    error = models.TextField(blank=True)
    repository_url = models.CharField(max_length=2000, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tool = models.ForeignKey(Tool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approval_request_ids = models.JSONField(default=list, blank=True)
    archive = models.BinaryField(null=True, blank=True, editable=False, help_text="The repository as a zip.")
    archive_name = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["requester", "-created_at"], name="scaffold_run_requester_idx")]

    def __str__(self) -> str:
        return f"run #{self.pk} of {self.template_version}"

    @property
    def is_active(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)

    @property
    def project_name(self) -> str:
        return str(self.values.get("name", ""))


class RunStep(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    run = models.ForeignKey(ScaffoldRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    step_id = models.CharField(max_length=63)
    action = models.CharField(max_length=30)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    log = models.TextField(blank=True)
    output = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "step_id"], name="one_step_per_run_and_id")]

    def __str__(self) -> str:
        return f"{self.step_id} ({self.status})"


class RepositoryUpdate(models.Model):
    """Bringing a published repository up to a newer template version: a branch with one merge commit."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    run = models.ForeignKey(ScaffoldRun, on_delete=models.CASCADE, related_name="updates")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The version the repository was at (read from its .portal-answers.yml).",
    )  # fmt: skip
    to_version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    branch = models.CharField(max_length=200, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    conflicts = models.JSONField(default=list, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"update of run #{self.run_id} to {self.to_version_id}"

    @property
    def is_active(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)
