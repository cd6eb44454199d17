"""The Celery app: JSON only, late acks, one message at a time per worker process (settings: CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Retries with exponential backoff and jitter, for tasks that opt in with autoretry_for.
RETRY_POLICY = {"max_retries": 5, "retry_backoff": 2, "retry_backoff_max": 300, "retry_jitter": True}
