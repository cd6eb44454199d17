from __future__ import annotations

import socket

from celery import shared_task
from django.utils import timezone

from portal.models import WorkerHeartbeat


@shared_task(name="portal.record_heartbeat")
def record_heartbeat(hostname: str | None = None) -> None:
    """Idempotent: one row per worker host, moved forward."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname or socket.gethostname(), defaults={"last_seen": timezone.now()}
    )
