"""Thin Celery wrappers: load by id, call one service. Safe to run twice (the run is claimed first)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from scaffolder import services


@shared_task(bind=True, name="scaffolder.execute_run", acks_late=True, max_retries=None)
def execute_run(self: Any, run_id: int) -> str:
    run = services.run_execute(run_id=run_id)
    if run is not None:
        return run.state
    # Redelivered after its worker died: the run is still leased to that worker. Come back when the lease ends;
    # a duplicate of a live run finds it finished by then and stops.
    remaining = services.run_lease_remaining(run_id=run_id)
    if remaining is None:
        return "not claimed"
    raise self.retry(countdown=remaining + 1)


@shared_task(name="scaffolder.execute_repository_update", acks_late=True)
def execute_repository_update(update_id: int) -> str:
    update = services.repository_update_execute(update_id=update_id)
    return "not claimed" if update is None else update.state
