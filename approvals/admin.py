"""Admin views of approvals. Platform admins edit the policy per tier (with its stages) here; the edit goes through
`policies.policy_update`, so it is validated and audited like an API edit. Requests, checks, decisions and
notifications are read-only: they change only through the workflow."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.forms import BaseFormSet, BaseInlineFormSet, Form, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from approvals import policies, services
from approvals.models import ApprovalPolicy, ApprovalRequest, CheckRun, Decision, Notification, PolicyStage
from portal.roles import user_is_platform_admin

POLICY_FIELDS = ("auto_approve", "requires_attestation", "validity_days", "exclude_owning_team", "description")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PolicyStageInline(admin.TabularInline):
    model = PolicyStage
    fields = ["order", "name", "role", "sla_hours"]
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return user_is_platform_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return user_is_platform_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return user_is_platform_admin(request.user)


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    list_display = ["tier", "auto_approve", "requires_attestation", "validity_days", "exclude_owning_team"]
    fields = ["tier", *POLICY_FIELDS]
    readonly_fields = ["tier"]
    inlines = [PolicyStageInline]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return user_is_platform_admin(request.user) or super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return user_is_platform_admin(request.user)

    # One policy per tier, seeded by a migration: nothing to add or delete.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApprovalPolicy, form: ModelForm, change: bool) -> None:
        """Saved in save_related, together with its stages, by the service."""

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: list[BaseInlineFormSet], change: bool
    ) -> None:
        stages = sorted(
            (
                row
                for formset in formsets
                for row in formset.cleaned_data
                if row and not row.get("DELETE") and row.get("name")
            ),
            key=lambda row: row.get("order") or 0,
        )
        try:
            policies.policy_update(
                actor=request.user,  # type: ignore[arg-type]
                policy=form.instance,
                data={key: form.cleaned_data[key] for key in POLICY_FIELDS if key in form.cleaned_data},
                stages=[{key: row.get(key) for key in ("name", "role", "sla_hours")} for row in stages],
            )
        except (services.ApprovalError, services.ApprovalPermissionError) as exc:
            # The service rolled its own savepoint back and nothing else was saved: show why, log no change.
            request._policy_refusal = str(exc)  # type: ignore[attr-defined]

    def log_change(self, request: HttpRequest, obj: ApprovalPolicy, message: Any) -> Any:
        if getattr(request, "_policy_refusal", None):
            return None
        return super().log_change(request, obj, message)

    def construct_change_message(
        self, request: HttpRequest, form: Form, formsets: Iterable[BaseFormSet[Any]], add: bool = False
    ) -> list[dict[str, dict[str, list[str]]]]:
        # The admin did not save the formsets, so they carry no per-object changes; name what changed instead.
        changed = list(form.changed_data) + (["stages"] if any(formset.has_changed() for formset in formsets) else [])
        return [{"changed": {"fields": changed}}]

    def response_change(self, request: HttpRequest, obj: ApprovalPolicy) -> HttpResponse:
        refusal = getattr(request, "_policy_refusal", None)
        if refusal:
            self.message_user(request, f"The policy was not saved: {refusal}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


class CheckRunInline(admin.TabularInline):
    model = CheckRun
    fields = readonly_fields = ("round", "name", "status", "summary", "attempts", "finished_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DecisionInline(admin.TabularInline):
    model = Decision
    fk_name = "request"
    fields = readonly_fields = ("round", "stage_name", "reviewer", "outcome", "comment", "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "title", "state", "tier", "owning_team", "requester", "round", "due_at"]
    list_filter = ["state", "kind", "tier"]
    search_fields = ["title", "subject_key", "requester__username", "owning_team__name"]
    list_select_related = ["owning_team", "requester"]
    date_hierarchy = "created_at"
    inlines = [CheckRunInline, DecisionInline]


@admin.register(CheckRun)
class CheckRunAdmin(ReadOnlyAdmin):
    list_display = ["request", "round", "name", "status", "attempts", "started_at", "finished_at"]
    list_filter = ["status", "name"]
    search_fields = ["request__title", "summary"]
    list_select_related = ["request"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["request", "round", "stage_name", "reviewer", "outcome", "created_at"]
    list_filter = ["outcome", "stage_name"]
    search_fields = ["request__title", "reviewer__username", "comment"]
    list_select_related = ["request", "reviewer"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["event", "channel", "target", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "channel", "event"]
    search_fields = ["target", "subject", "dedupe_key"]
    date_hierarchy = "created_at"
