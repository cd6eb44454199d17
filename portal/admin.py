"""Admin views of the portal's own records. Both are read-only: the audit trail is append-only (editing a row
would break the hash chain), and tokens are issued and revoked on the tokens page, where it is audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from portal.models import ApiToken, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Lists and shows rows; nothing can be added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "sequence", "occurred_at", "actor_label", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["actor_kind", "object_type"]
    search_fields = ["action", "actor_label", "object_id", "object_repr", "request_id"]
    date_hierarchy = "occurred_at"
    ordering = ["-id"]
    # The table grows without bound; counting it on every page is the slow part.
    show_full_result_count = False


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["name", "key_prefix", "kind", "user", "subject", "scopes", "expires_at", "revoked_at", "state"]
    list_filter = ["kind"]
    search_fields = ["name", "key_prefix", "user__username", "subject"]
    list_select_related = ["user", "created_by"]
    # Never the digest: together with a leaked database it is all an attacker needs to try secrets offline.
    exclude = ["key_digest"]
    readonly_fields = ["state"]
    ordering = ["-created_at"]
