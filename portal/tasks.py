from __future__ import annotations

import socket

from celery import shared_task
from django.utils import timezone

from portal.audit import audit_seal as seal_audit_chain
from portal.models import WorkerHeartbeat


@shared_task(name="portal.record_heartbeat")
def record_heartbeat(hostname: str | None = None) -> None:
    """Idempotent: one row per worker host, moved forward."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname or socket.gethostname(), defaults={"last_seen": timezone.now()}
    )


@shared_task(name="portal.audit_seal")
def audit_seal() -> None:
    """Chain the audit events committed since the last run and sign a checkpoint; a run that finds another one
    at work leaves it to that one."""
    seal_audit_chain(wait=False)
