"""Imports too large for a web request (more than IMPORT_INLINE_MAX_BYTES of input): the UI and the API queue them,
a Celery worker runs them (where, as on the command line, YAML may be parsed on every core), and whoever started
one follows its phase (queued, parsing, writing N entities, done or failed) and then reads its report. A web
worker neither blocks on a 10,000-document file nor starts interpreters.

The run is the same import as inline (catalog.importing.import_parsed, one transaction, audited in the name of the
person who started it); the inputs are kept in the database until it ends, so any worker host can run it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.importing import import_parsed, parse_inputs
from catalog.models import EntitySource, ImportRun, ImportRunInput
from portal.audit import audit_record
from portal.context import acting_as, actor_for_user
from portal.roles import user_is_platform_admin
from portal.types import User

logger = logging.getLogger(__name__)


def import_runs_inline(inputs: Sequence[tuple[str, bytes]]) -> bool:
    """Whether an import of these inputs runs inside the web request that brought them."""
    return sum(len(content) for _, content in inputs) <= settings.IMPORT_INLINE_MAX_BYTES


def import_run_queue(
    *,
    inputs: Sequence[tuple[str, bytes]],
    actor: User,
    default_owner: str | None = None,
    dry_run: bool = False,
    adopt: bool = False,
) -> ImportRun:
    """Keep the inputs and hand the import to a worker once this transaction commits."""
    from catalog.tasks import run_import

    with transaction.atomic():
        run = ImportRun.objects.create(
            created_by=actor,
            dry_run=dry_run,
            adopt=adopt,
            default_owner=default_owner or "",
            files=len(inputs),
            input_bytes=sum(len(content) for _, content in inputs),
        )
        ImportRunInput.objects.bulk_create(
            ImportRunInput(run=run, position=position, name=name[:255], content=content)
            for position, (name, content) in enumerate(inputs)
        )
        audit_record(
            action="catalog.import.queued",
            target=run,
            changes={"files": run.files, "bytes": run.input_bytes, "dry_run": dry_run, "adopt": adopt},
        )
        transaction.on_commit(lambda: run_import.delay(run.pk))
    return run


def import_run_execute(*, run_id: int) -> ImportRun | None:
    """Run a queued import; None when another worker has it (a task delivered twice runs once). A run whose worker
    died (started longer ago than a task may last) is run again: its import wrote nothing unless it committed."""
    now = timezone.now()
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    started = (
        ImportRun.objects.filter(pk=run_id)
        .filter(
            Q(state=ImportRun.State.QUEUED)
            | Q(state__in=[ImportRun.State.PARSING, ImportRun.State.WRITING], started_at__lt=abandoned)
        )
        .update(state=ImportRun.State.PARSING, started_at=now)
    )
    if not started:
        return None
    run = ImportRun.objects.select_related("created_by").get(pk=run_id)
    actor = actor_for_user(run.created_by)
    try:
        results = parse_inputs((item.name, bytes(item.content)) for item in run.inputs.all())
        run.entities = sum(len(result.entities) for result in results)
        run.state = ImportRun.State.WRITING
        run.save(update_fields=["entities", "state"])
        with acting_as(actor) if actor else contextlib.nullcontext():  # author deleted since: the system
            report = import_parsed(
                results,
                actor=run.created_by,
                default_owner=run.default_owner or None,
                dry_run=run.dry_run,
                source_kind=EntitySource.IMPORT,
                adopt=run.adopt,
            )
        run.report = report.as_dict()
        run.state = ImportRun.State.DONE
    except Exception as exc:
        logger.exception("import run %s failed", run_id)
        run.state, run.problem = ImportRun.State.FAILED, f"The import failed: {type(exc).__name__}. Nothing was saved."
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save(update_fields=["report", "state", "problem", "finished_at"])
        run.inputs.all().delete()
        counts = run.report or {}
        audit_record(
            action="catalog.import.finished",
            target=run,
            changes={
                "state": run.state,
                **{key: counts.get(key, 0) for key in ("created", "updated", "unchanged", "skipped", "failed")},
            },
        )
    return run


def import_run_visible(run: ImportRun, user: User) -> bool:
    """Its author and platform admins see a run (and its report, which names what was imported)."""
    return run.created_by_id == user.pk or user_is_platform_admin(user)
