"""Thin Celery wrappers: load by id, call one service. Idempotent and safe to run twice."""

from __future__ import annotations

from celery import shared_task

from approvals import checks as check_functions
from approvals import notifications, services
from approvals.models import CheckRun

CHECK_MAX_RETRIES = 3


@shared_task(bind=True, name="approvals.run_check", max_retries=CHECK_MAX_RETRIES, acks_late=True)
def run_check(self, check_id: int) -> str:  # type: ignore[no-untyped-def]
    if not services.check_claim(check_id):
        return "not claimed"
    check = CheckRun.objects.select_related("request").get(pk=check_id)
    function = check_functions.CHECKS[check.name]
    try:
        result = function(services.subject_of(check.request))
    except check_functions.CheckTransientError as exc:
        if self.request.retries >= CHECK_MAX_RETRIES:
            services.check_record(check_id, error=str(exc))
            return "error"
        services.check_release_for_retry(check_id, str(exc))
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    services.check_record(check_id, result=result)
    return "passed" if result.passed else "failed"


@shared_task(bind=True, name="approvals.send_notification", max_retries=notifications.MAX_ATTEMPTS - 1, acks_late=True)
def send_notification(self, notification_id: int) -> str:  # type: ignore[no-untyped-def]
    final = self.request.retries >= notifications.MAX_ATTEMPTS - 1
    try:
        return notifications.notification_send(notification_id, final_attempt=final)
    except notifications.NotificationFailed as exc:
        raise self.retry(exc=exc, countdown=min(5 * 2**self.request.retries, 600)) from exc


@shared_task(name="approvals.sla_scan")
def sla_scan() -> dict[str, int]:
    return services.sla_scan()


@shared_task(name="approvals.requeue_stale_checks")
def requeue_stale_checks() -> int:
    return len(services.requeue_stale_checks())


@shared_task(name="approvals.expire_grants")
def expire_grants() -> int:
    return services.expire_grants()


@shared_task(name="approvals.open_recertifications")
def open_recertifications() -> int:
    return services.open_recertifications()


@shared_task(name="approvals.expire_stale_requests")
def expire_stale_requests() -> int:
    return services.expire_stale_requests()
