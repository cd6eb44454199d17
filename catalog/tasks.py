from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from catalog.locations import location_sync, locations_due


@shared_task(name="catalog.sync_location", autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def sync_location(location_id: int) -> None:
    location_sync(location_id=location_id)


@shared_task(name="catalog.sync_due_locations")
def sync_due_locations() -> None:
    every = timedelta(minutes=getattr(settings, "LOCATION_SYNC_MINUTES", 60))
    for location_id in locations_due(every=every):
        sync_location.delay(location_id)


@shared_task(name="catalog.run_import", acks_late=True)
def run_import(run_id: int) -> str | None:
    from catalog.import_runs import import_run_execute

    run = import_run_execute(run_id=run_id)
    return run.state if run else None
