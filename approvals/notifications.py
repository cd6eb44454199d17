"""Notifications: rows written in the transition's transaction (deduplicated by key), sent after commit by a
Celery task with retries and backoff. A failing mail server or webhook never blocks or rolls back a transition.

A worker task that makes a transition sends its notifications itself after its commit (`sent_by_caller`), instead
of one more Celery message each; one it cannot send goes on to the task for the remaining attempts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, Notification, NotificationPreference
from catalog.models import Team, TeamMembership
from portal.db import insert_unless_present
from portal.net import FetchError, SafeHttpClient, UnsafeUrlError

logger = logging.getLogger(__name__)
SEND_LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 6

EVENT_TITLES = {
    "stage": "Review needed",
    "reminder": "Review due soon",
    "escalation-1": "Review overdue (escalated)",
    "escalation-2": "Review overdue (escalated to platform admins)",
    "approved": "Approved",
    "rejected": "Rejected",
    "changes_requested": "Changes requested",
    "expired": "Request expired",
    "grant-expired": "Grant expired",
    "facts_changed": "Facts changed: back to checks",
    "drift": "Live MCP server differs from what was approved",
}


class NotificationFailed(Exception):
    pass


# Inside sent_by_caller(): the ids of the notifications created, for the caller to send after its commit.
_held: ContextVar[list[int] | None] = ContextVar("notifications_held", default=None)


def _request_url(request: ApprovalRequest) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("approvals:request", args=[request.pk])


def _muted(preference: NotificationPreference | None, event: str, channel: str) -> bool:
    if preference is None:
        return False
    if channel == Notification.Channel.EMAIL and not preference.email_enabled:
        return True
    if channel == Notification.Channel.WEBHOOK and not preference.chat_enabled:
        return True
    return event in (preference.muted_events or [])


def _create(rows: Iterable[Notification]) -> list[int]:
    """Insert the notifications not sent before (by dedupe key) and send them after the commit; a duplicate can
    never fail the transition."""
    created = insert_unless_present(Notification, list(rows), unique_field="dedupe_key")
    held = _held.get()
    if held is not None:
        held.extend(created)
    elif created:

        def enqueue() -> None:
            from approvals.tasks import send_notification

            for notification_id in created:
                send_notification.delay(notification_id)

        transaction.on_commit(enqueue)
    return created


@contextlib.contextmanager
def sent_by_caller() -> Iterator[list[int]]:
    """Hold the notifications created inside (their ids, in the list yielded) for the caller to send with
    `notifications_send` once its transaction has committed, instead of enqueueing a task for each. For a worker
    task that makes a transition: a message, its trip through the broker and a task start cost more than sending."""
    held: list[int] = []
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)


def notifications_send(notification_ids: Iterable[int]) -> None:
    """Send each now, as the task's first attempt would. One that fails goes on to the task for the remaining
    attempts, with the same backoff; one that fails unexpectedly is logged and does not stop the others."""
    from approvals.tasks import send_notification_retry

    for notification_id in notification_ids:
        try:
            notification_send(notification_id)
        except NotificationFailed:
            send_notification_retry(notification_id, attempts_made=1)
        except Exception:
            logger.exception("notification %s could not be sent", notification_id)


def notifications_unsent(request_id: int) -> list[int]:
    """The request's notifications that nobody has tried to send yet (none waiting for a retry)."""
    return list(
        Notification.objects.filter(request_id=request_id, status=Notification.Status.PENDING, attempts=0).values_list(
            "pk", flat=True
        )
    )


def _email_rows(
    request: ApprovalRequest | None, users: Iterable[Any], event: str, subject_line: str, body: str, dedupe: str
) -> list[Notification]:
    users = [u for u in users if u.email]
    preferences = {p.user_id: p for p in NotificationPreference.objects.filter(user__in=users)}
    return [
        Notification(
            request=request,
            event=event,
            channel=Notification.Channel.EMAIL,
            recipient=user,
            target=user.email,
            subject=subject_line[:300],
            body=body,
            dedupe_key=f"{dedupe}:email:{user.pk}"[:300],
        )
        for user in users
        if not _muted(preferences.get(user.pk), event, Notification.Channel.EMAIL)
    ]


def _webhook_rows(
    request: ApprovalRequest | None, team: Team | None, url: str, event: str, subject_line: str, body: str, dedupe: str
) -> list[Notification]:
    if not url:
        return []
    preference = NotificationPreference.objects.filter(team=team).first() if team is not None else None
    if _muted(preference, event, Notification.Channel.WEBHOOK):
        return []
    return [
        Notification(
            request=request,
            event=event,
            channel=Notification.Channel.WEBHOOK,
            target=url,
            subject=subject_line[:300],
            body=body,
            dedupe_key=f"{dedupe}:webhook:{team.pk if team else 'reviewers'}"[:300],
        )
    ]


def _summary(request: ApprovalRequest) -> str:
    return f"#{request.pk} {request.get_kind_display()}: {request.title} (tier {request.tier})"


def notify_stage(request: ApprovalRequest, stage: dict[str, Any], *, event: str = "stage") -> list[int]:
    from approvals.services import OWNER_ATTESTATION_ROLE

    role = stage.get("role", "")
    if role == OWNER_ATTESTATION_ROLE:
        users = get_user_model().objects.filter(
            team_memberships__team=request.owning_team,
            team_memberships__role=TeamMembership.Role.MAINTAINER,
            is_active=True,
        )
    else:
        users = get_user_model().objects.filter(groups__name=role, is_active=True).distinct()
    users = users.exclude(pk=request.requester_id)
    title = f"{EVENT_TITLES.get(event, event)}: {_summary(request)}"
    body = f"{title}\nStage: {stage.get('name', '')}; due {request.due_at:%Y-%m-%d %H:%M %Z}.\nWhy it is {request.tier}: {request.risk.get('explanation', '')}\n{_request_url(request)}"
    dedupe = f"req:{request.pk}:r{request.round}:s{request.current_stage}:{event}"
    rows = _email_rows(request, users, event, title, body, dedupe)
    rows += _webhook_rows(
        request, None, getattr(settings, "APPROVALS_REVIEW_WEBHOOK_URL", ""), event, title, body, dedupe
    )
    return _create(rows)


def notify_role(request: ApprovalRequest, role: str, *, event: str) -> list[int]:
    users = (
        get_user_model().objects.filter(groups__name=role, is_active=True).exclude(pk=request.requester_id).distinct()
    )
    title = f"{EVENT_TITLES.get(event, event)}: {_summary(request)}"
    body = f"{title}\nIt was due {request.due_at:%Y-%m-%d %H:%M %Z} and is still waiting at stage {request.current_stage + 1}.\n{_request_url(request)}"
    dedupe = f"req:{request.pk}:r{request.round}:s{request.current_stage}:{event}"
    return _create(_email_rows(request, users, event, title, body, dedupe))


def notify_requester(request: ApprovalRequest, event: str, *, comment: str = "") -> list[int]:
    title = f"{EVENT_TITLES.get(event, event)}: {_summary(request)}"
    body = title + (f"\n\n{comment}" if comment else "") + f"\n{_request_url(request)}"
    dedupe = f"req:{request.pk}:r{request.round}:{event}"
    rows = _email_rows(request, [request.requester], event, title, body, dedupe)
    team = request.owning_team
    rows += _webhook_rows(request, team, team.chat_webhook_url, event, title, body, dedupe)
    return _create(rows)


def notify_team(team: Team, *, event: str, subject_line: str, body: str, dedupe: str) -> list[int]:
    maintainers = get_user_model().objects.filter(
        team_memberships__team=team, team_memberships__role=TeamMembership.Role.MAINTAINER, is_active=True
    )
    rows = _email_rows(None, maintainers, event, subject_line, body, dedupe)
    rows += _webhook_rows(None, team, team.chat_webhook_url, event, subject_line, body, dedupe)
    return _create(rows)


def notify_role_members(role: str, *, event: str, subject_line: str, body: str, dedupe: str) -> list[int]:
    """Tell everyone holding a role (e.g. security reviewers) about something that is not an approval request."""
    users = get_user_model().objects.filter(groups__name=role, is_active=True).distinct()
    return _create(_email_rows(None, users, event, subject_line, body, dedupe))


def notification_claim(notification_id: int) -> Notification | None:
    """Take the notification to send it: pending, or sending with an expired lease (its worker died). One
    conditional UPDATE ... RETURNING, so a duplicate delivery finds nothing to claim.

    Hand-written because it is a conditional-update claim that returns what it claimed (the ORM needs a second
    query to read it back, once per notification sent)."""
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    quote = connection.ops.quote_name
    fields = ["id", "channel", "target", "subject", "body", "attempts"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Notification._meta.db_table)} SET status = %s, lease_until = %s "  # noqa: S608 (names are ours)
            "WHERE id = %s AND (status = %s OR (status = %s AND lease_until < %s)) "
            f"RETURNING {', '.join(quote(name) for name in fields)}",
            [
                Notification.Status.SENDING,
                adapt(now + SEND_LEASE),
                notification_id,
                Notification.Status.PENDING,
                Notification.Status.SENDING,
                adapt(now),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Notification(**dict(zip(fields, row, strict=True)), status=Notification.Status.SENDING)


def notification_send(notification_id: int, *, final_attempt: bool = False) -> str:
    """Send one notification. Raises NotificationFailed (for the task to retry) unless this was the last try."""
    notification = notification_claim(notification_id)
    if notification is None:
        return "skipped"
    try:
        if notification.channel == Notification.Channel.EMAIL:
            send_mail(
                notification.subject,
                notification.body,
                settings.DEFAULT_FROM_EMAIL,
                [notification.target],
                fail_silently=False,
            )
        else:
            response = SafeHttpClient().post(
                notification.target, json={"text": notification.body}, timeout=10, max_bytes=64 * 1024
            )
            if not 200 <= response.status < 300:
                raise NotificationFailed(f"webhook answered HTTP {response.status}")
    except (OSError, FetchError, NotificationFailed) as exc:
        # A refused address will be refused again: no point retrying it.
        final_attempt = final_attempt or isinstance(exc, UnsafeUrlError)
        status = Notification.Status.FAILED if final_attempt else Notification.Status.PENDING
        Notification.objects.filter(pk=notification.pk).update(
            status=status, attempts=notification.attempts + 1, last_error=str(exc)[:500], lease_until=None
        )
        logger.warning(
            "notification %s attempt %s failed: %s", notification.pk, notification.attempts + 1, type(exc).__name__
        )
        if final_attempt:
            return "failed"
        raise NotificationFailed(str(exc)) from exc
    notification.status, notification.attempts = Notification.Status.SENT, notification.attempts + 1
    notification.sent_at, notification.lease_until, notification.last_error = timezone.now(), None, ""
    Notification.objects.filter(pk=notification.pk).update(
        status=notification.status,
        attempts=notification.attempts,
        sent_at=notification.sent_at,
        lease_until=None,
        last_error="",
    )
    return "sent"
