"""Who hears about approvals, and how: a person's e-mail choices and a team's chat webhook. Small writes, each one
transaction with its audit event, like every other change in the portal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from approvals.models import NotificationPreference
from approvals.notifications import EVENT_TITLES
from approvals.services import ApprovalError, ApprovalPermissionError
from catalog.models import Team, TeamMembership
from portal.audit import audit_record
from portal.net import FetchError, SafeHttpClient, UnsafeUrlError
from portal.roles import user_is_platform_admin
from portal.types import User


def preference_for_user(*, user: User) -> NotificationPreference:
    """The saved choice, or the defaults (everything on) without saving them."""
    saved = NotificationPreference.objects.filter(user_id=user.pk).first()
    return saved or NotificationPreference(user_id=user.pk)


def preference_for_team(*, team: Team) -> NotificationPreference:
    return NotificationPreference.objects.filter(team=team).first() or NotificationPreference(team=team)


def preference_update_user(*, user: User, email_enabled: bool, muted_events: Iterable[str]) -> NotificationPreference:
    muted = sorted(set(muted_events))
    unknown = [event for event in muted if event not in EVENT_TITLES]
    if unknown:
        raise ApprovalError(
            {"muted_events": f"has unknown events {', '.join(unknown)}; known: {', '.join(EVENT_TITLES)}."}
        )
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user_id=user.pk)
        before = {"email_enabled": preference.email_enabled, "muted_events": list(preference.muted_events)}
        preference.email_enabled = email_enabled
        preference.muted_events = muted
        preference.save()
        after = {"email_enabled": email_enabled, "muted_events": muted}
        audit_record(
            action="approvals.preference.updated",
            target=preference,
            changes={key: {"before": before[key], "after": after[key]} for key in after if before[key] != after[key]},
        )
    return preference


def _redacted(url: str) -> str:
    """Webhook URLs carry their secret in the path: the audit trail keeps only where they point."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "…"


def _is_maintainer(user: User, team: Team) -> bool:
    return TeamMembership.objects.filter(team=team, user_id=user.pk, role=TeamMembership.Role.MAINTAINER).exists()


def team_webhook_update(*, actor: User, team: Team, url: str, chat_enabled: bool) -> Team:
    if not (user_is_platform_admin(actor) or _is_maintainer(actor, team)):
        raise ApprovalPermissionError(f"Only maintainers of team {team.name} (or platform admins) change its chat.")
    url = (url or "").strip()
    if url:
        try:
            SafeHttpClient().check_url(url)
        except UnsafeUrlError as exc:
            raise ApprovalError({"url": f"is not accepted: {exc.reason}. Use a public https webhook."}) from exc
        except FetchError as exc:
            raise ApprovalError({"url": f"could not be checked: {exc}"}) from exc
    with transaction.atomic():
        locked = Team.objects.select_for_update().get(pk=team.pk)
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(team=locked)
        changes: dict[str, Any] = {}
        if locked.chat_webhook_url != url:
            changes["chat_webhook_url"] = {"before": _redacted(locked.chat_webhook_url), "after": _redacted(url)}
            locked.chat_webhook_url = url
            locked.save(update_fields=["chat_webhook_url", "updated_at"])
        if preference.chat_enabled != chat_enabled:
            changes["chat_enabled"] = {"before": preference.chat_enabled, "after": chat_enabled}
            preference.chat_enabled = chat_enabled
            preference.save(update_fields=["chat_enabled"])
        if changes:
            audit_record(action="approvals.team_chat.updated", target=locked, changes=changes)
    return locked
