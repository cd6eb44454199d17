"""Thin Celery wrappers: load by id, call one service. Idempotent and safe to run twice."""

from __future__ import annotations

from celery import shared_task

from approvals import checks_running, notifications, scans, services


class ChecksPending(Exception):
    """Some checks could not get an answer yet; the task is retried after a backoff."""


# The services count attempts per check (CHECK_MAX_ATTEMPTS); this only bounds a task that keeps coming back.
@shared_task(bind=True, name="approvals.run_checks", max_retries=services.CHECK_MAX_ATTEMPTS * 2, acks_late=True)
def run_checks(self, request_id: int, round_number: int) -> str:  # type: ignore[no-untyped-def]
    outcome = checks_running.checks_run(request_id=request_id, round_number=round_number)
    if outcome.retry_in is not None:
        raise self.retry(exc=ChecksPending(f"request #{request_id} round {round_number}"), countdown=outcome.retry_in)
    return f"ran {outcome.claimed}" if outcome.claimed else "not claimed"


def _send_backoff(retries: int) -> int:
    return min(5 * 2**retries, 600)


@shared_task(bind=True, name="approvals.send_notification", max_retries=notifications.MAX_ATTEMPTS - 1, acks_late=True)
def send_notification(self, notification_id: int) -> str:  # type: ignore[no-untyped-def]
    final = self.request.retries >= notifications.MAX_ATTEMPTS - 1
    try:
        return notifications.notification_send(notification_id, final_attempt=final)
    except notifications.NotificationFailed as exc:
        raise self.retry(exc=exc, countdown=_send_backoff(self.request.retries)) from exc


def send_notification_retry(notification_id: int, *, attempts_made: int) -> None:
    """Hand a notification whose first attempts were made elsewhere to the task, which carries on counting."""
    send_notification.apply_async((notification_id,), countdown=_send_backoff(attempts_made - 1), retries=attempts_made)


@shared_task(name="approvals.sla_scan")
def sla_scan() -> dict[str, int]:
    return scans.sla_scan()


@shared_task(name="approvals.requeue_stale_checks")
def requeue_stale_checks() -> int:
    return len(scans.requeue_stale_checks())


@shared_task(name="approvals.expire_grants")
def expire_grants() -> int:
    return scans.expire_grants()


@shared_task(name="approvals.open_recertifications")
def open_recertifications() -> int:
    return scans.open_recertifications()


@shared_task(name="approvals.expire_stale_requests")
def expire_stale_requests() -> int:
    return scans.expire_stale_requests()


@shared_task(name="approvals.mcp_drift_check")
def mcp_drift_check() -> dict[str, int]:
    from approvals import drift

    return drift.drift_check().as_dict()
