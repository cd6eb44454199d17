"""Admin views of the catalog. Read-only: every catalog write goes through `catalog.services`, which scores risk,
keeps the search index and object permissions in step and audits the change; an admin form would skip all that.
Change the catalog in the portal, the API or its descriptors."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from catalog.models import Agent, AIModel, Capability, Location, Team, TeamMembership, Tool, ToolGrant


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(ReadOnlyInline):
    model = TeamMembership
    fields = ["user", "role"]


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    list_display = ["name", "title", "email", "parent"]
    search_fields = ["name", "title"]
    list_select_related = ["parent"]
    inlines = [MembershipInline]


@admin.register(AIModel)
class AIModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "provider", "model_id", "hosting", "residency", "data_class"]
    list_filter = ["hosting", "data_class"]
    search_fields = ["name", "title", "provider", "model_id"]


@admin.register(Location)
class LocationAdmin(ReadOnlyAdmin):
    list_display = ["target", "kind", "path", "default_owner", "enabled", "last_synced_at", "last_outcome"]
    list_filter = ["kind", "enabled", "last_outcome"]
    search_fields = ["target", "path"]
    list_select_related = ["default_owner"]


@admin.register(Agent)
class AgentAdmin(ReadOnlyAdmin):
    list_display = ["name", "owner", "status", "agent_type", "autonomy_level", "risk_tier", "lifecycle", "updated_at"]
    list_filter = ["status", "risk_tier", "agent_type", "lifecycle", "orphaned"]
    search_fields = ["name", "title", "owner__name"]
    list_select_related = ["owner"]


class CapabilityInline(ReadOnlyInline):
    model = Capability
    fields = ["name", "read_only", "destructive", "idempotent", "open_world"]


@admin.register(Tool)
class ToolAdmin(ReadOnlyAdmin):
    list_display = ["name", "registry_name", "owner", "kind", "status", "risk_tier", "version", "updated_at"]
    list_filter = ["kind", "status", "risk_tier", "transport", "lifecycle", "orphaned"]
    search_fields = ["name", "title", "registry_name", "owner__name"]
    list_select_related = ["owner"]
    inlines = [CapabilityInline]


@admin.register(ToolGrant)
class ToolGrantAdmin(ReadOnlyAdmin):
    list_display = ["agent", "tool", "environment", "status", "risk_tier", "expires_at", "requested_by"]
    list_filter = ["status", "risk_tier", "environment"]
    search_fields = ["agent__name", "tool__name"]
    list_select_related = ["agent", "tool", "requested_by"]
