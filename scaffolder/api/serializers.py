"""Scaffolder API shapes. Write serializers only parse; `scaffolder.services` owns every rule."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.api.serializers import NamedChoiceField
from scaffolder.models import GoldenPathTemplate, RunStep, ScaffoldRun, TemplateVersion

VALUES_HELP = "Parameter values, as described by the template's `parameters_schema` (JSON Schema)."


class TemplateVersionSerializer(serializers.ModelSerializer):
    version = serializers.CharField(help_text="Semantic version from the template's template.yaml.")
    git_commit = serializers.CharField(help_text="Commit the files came from; empty for built-in templates.")
    content_hash = serializers.CharField(help_text="SHA-256 over the template's file paths and contents.")
    created_at = serializers.DateTimeField(help_text="When this version was recorded.")

    class Meta:
        model = TemplateVersion
        fields = ["version", "git_commit", "content_hash", "created_at"]
        read_only_fields = fields


class TemplateSerializer(serializers.ModelSerializer):
    name = serializers.CharField(help_text="Unique name (DNS label); use it in URLs and when starting runs.")
    title = serializers.CharField(help_text="Human title.")
    description = serializers.CharField(help_text="What the golden path gives you.")
    version = serializers.CharField(help_text="The latest recorded version; runs use it.")
    owner = serializers.CharField(help_text="The team that maintains the golden path.")
    tags = serializers.ListField(child=serializers.CharField(), help_text="Free-form tags.")
    source = NamedChoiceField(
        enum_name="GoldenPathSourceEnum",
        choices=GoldenPathTemplate.Source.choices,
        help_text="builtin (shipped with the portal) or git (registered from a repository).",
    )
    parameters_schema = serializers.JSONField(help_text="JSON Schema (2020-12) of the parameters a run takes.")
    steps = serializers.JSONField(help_text="The portal actions a run performs, in order: id, action, name.")

    class Meta:
        model = GoldenPathTemplate
        fields = ["name", "title", "description", "version", "owner", "tags", "source", "parameters_schema", "steps"]
        read_only_fields = fields


class TemplateDetailSerializer(TemplateSerializer):
    git_url = serializers.CharField(help_text="Repository the template comes from (git sources).")
    git_ref = serializers.CharField(help_text="Branch or tag followed (git sources).")
    git_path = serializers.CharField(help_text="Template folder inside the repository (git sources).")
    versions = TemplateVersionSerializer(many=True, help_text="Every recorded version, newest first.")

    class Meta(TemplateSerializer.Meta):
        fields = [*TemplateSerializer.Meta.fields, "git_url", "git_ref", "git_path", "versions"]
        read_only_fields = fields


class PreviewRequestSerializer(serializers.Serializer):
    values = serializers.DictField(help_text=VALUES_HELP)


class PreviewFileSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Path inside the new repository (POSIX separators).")
    size = serializers.IntegerField(help_text="Size in bytes.")
    encoding = serializers.ChoiceField(choices=["utf-8", "base64"], help_text="How `content` is encoded.")
    content = serializers.CharField(help_text="The file's contents: text, or base64 for binary files.")


class PreviewSerializer(serializers.Serializer):
    template = serializers.CharField(help_text="Template name.")
    version = serializers.CharField(help_text="Template version rendered.")
    files = PreviewFileSerializer(many=True, help_text="Every file the run would create, sorted by path.")


class RunCreateSerializer(serializers.Serializer):
    template = serializers.CharField(help_text="Name of the golden path to run (its latest version is used).")
    values = serializers.DictField(help_text=VALUES_HELP)
    publisher = NamedChoiceField(
        enum_name="ScaffoldPublisherEnum",
        choices=ScaffoldRun.Publisher.choices,
        default=ScaffoldRun.Publisher.NONE,
        help_text="Where to publish: none (zip download only), git, github or gitlab (when configured).",
    )


class RunStepSerializer(serializers.ModelSerializer):
    step_id = serializers.CharField(help_text="The step's id in the template.")
    action = serializers.CharField(help_text="Portal action: render, git_commit, publish, register_catalog, ...")
    name = serializers.CharField(help_text="What the step does, for people.")
    status = NamedChoiceField(
        enum_name="RunStepStatusEnum", choices=RunStep.Status.choices, help_text="pending, running, succeeded, ..."
    )
    attempts = serializers.IntegerField(help_text="How many times the step ran (a retried run resumes here).")
    log = serializers.CharField(help_text="The step's log, for people.")
    output = serializers.JSONField(help_text="What the step recorded (commit, repository, entity, requests...).")
    started_at = serializers.DateTimeField(allow_null=True, help_text="When the last attempt started.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When the last attempt finished.")

    class Meta:
        model = RunStep
        fields = ["step_id", "action", "name", "status", "attempts", "log", "output", "started_at", "finished_at"]
        read_only_fields = fields


class CatalogEntitySerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="agent or tool.")
    name = serializers.CharField(help_text="Catalog name.")
    url = serializers.CharField(help_text="API URL of the entity.")


class RunSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(read_only=True, help_text="Run id.")
    template = serializers.CharField(source="template_version.template.name", help_text="Golden path name.")
    version = serializers.CharField(source="template_version.version", help_text="Golden path version used.")
    requester = serializers.CharField(source="requester.username", help_text="Who started the run.")
    values = serializers.JSONField(help_text="The validated parameter values, defaults filled in.")
    publisher = NamedChoiceField(
        enum_name="ScaffoldPublisherEnum", choices=ScaffoldRun.Publisher.choices, help_text="Where it publishes."
    )
    state = NamedChoiceField(
        enum_name="ScaffoldRunStateEnum", choices=ScaffoldRun.State.choices, help_text="queued, running, ..."
    )
    current_step = serializers.CharField(help_text="The step running now (or the last one that ran).")
    error = serializers.CharField(help_text="Why the run failed, for people; empty otherwise.")
    repository_url = serializers.CharField(help_text="Where the repository was published.")
    commit_sha = serializers.CharField(help_text="The initial commit (reproducible from the run).")
    catalog_entity = serializers.SerializerMethodField(help_text="The draft agent or tool registered.")
    approval_request_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Onboarding and grant requests filed in approvals."
    )
    download_url = serializers.SerializerMethodField(help_text="The repository as a zip, once committed.")
    created_at = serializers.DateTimeField(help_text="When the run was started.")
    started_at = serializers.DateTimeField(allow_null=True, help_text="When a worker last picked it up.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When it succeeded or failed.")

    class Meta:
        model = ScaffoldRun
        fields = [
            "id", "template", "version", "requester", "values", "publisher", "state", "current_step", "error",
            "repository_url", "commit_sha", "catalog_entity", "approval_request_ids", "download_url",
            "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(CatalogEntitySerializer(allow_null=True))
    def get_catalog_entity(self, run: ScaffoldRun) -> dict[str, Any] | None:
        if run.agent_id is not None and run.agent is not None:
            return {
                "kind": "agent",
                "name": run.agent.name,
                "url": reverse("catalog-api:agent-detail", args=[run.agent.name]),
            }
        if run.tool_id is not None and run.tool is not None:
            return {
                "kind": "tool",
                "name": run.tool.name,
                "url": reverse("catalog-api:tool-detail", args=[run.tool.name]),
            }
        return None

    @extend_schema_field(OpenApiTypes.STR)
    def get_download_url(self, run: ScaffoldRun) -> str | None:
        return reverse("scaffolder:run-download", args=[run.pk]) if run.commit_sha else None


class RunDetailSerializer(RunSerializer):
    steps = RunStepSerializer(many=True, help_text="Each step with its status, attempts, log and output.")

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "steps"]
        read_only_fields = fields
