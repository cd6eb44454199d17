"""The sealed audit chain: no lock for writers, a sealer that chains in id order (and waits at a young gap), and
signed checkpoints in the database and in a file that catch a rewrite with every later hash recomputed."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import TestCase
from django.utils import timezone

from portal.audit import audit_record, audit_seal, audit_verify_chain, event_digest
from portal.context import Actor, acting_as
from portal.models import AuditChainHead, AuditCheckpoint, AuditEvent
from portal.tasks import audit_seal as audit_seal_task
from portal.testing.audit import tamper_with_audit

pytestmark = pytest.mark.django_db


def _record(count: int, label: str = "alice") -> list[int]:
    with acting_as(Actor(kind="user", user_id=7, label=label)):
        return [
            audit_record(action="test.thing.changed", object_type="test.thing", object_id=i, changes={"n": i}).pk
            for i in range(count)
        ]


def _seal(**options: Any) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return audit_seal(**options)


def _rewrite(sequence: int, *, actor_label: str) -> None:
    """Change one sealed event and recompute its hash and every later one (and the head), as a careful attacker
    would: the chain alone then verifies."""
    prev_hash = AuditEvent.objects.get(sequence=sequence).prev_hash
    for event in AuditEvent.objects.filter(sequence__gte=sequence).order_by("sequence"):
        label = actor_label if event.sequence == sequence else event.actor_label
        values = {
            field: getattr(event, field)
            for field in (
                "sequence", "occurred_at", "actor_kind", "actor_user_id", "actor_token_id", "action",
                "object_type", "object_id", "object_repr", "changes", "request_id", "client_ip",
            )
        }  # fmt: skip
        new_hash = event_digest(**values, actor_label=label, prev_hash=prev_hash)
        tamper_with_audit(
            "UPDATE portal_auditevent SET actor_label = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [label, prev_hash, new_hash, event.pk],
        )
        prev_hash = new_hash
    tamper_with_audit("UPDATE portal_auditchainhead SET last_hash = %s", [prev_hash])


def test_writers_leave_the_chain_to_the_sealer_which_signs_a_checkpoint_in_the_database_and_the_file() -> None:
    ids = _record(3)
    assert not AuditEvent.objects.filter(pk__in=ids, hash__isnull=False).exists()

    result = _seal()

    assert (result.sealed, result.waiting) == (3, 0)
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.sequence for e in events] == [1, 2, 3]
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.sequence, checkpoint.hash, checkpoint.event_id) == (3, events[2].hash, events[2].pk)
    line = json.loads(Path(settings.AUDIT_CHECKPOINT_PATH).read_text().strip())
    assert (line["sequence"], line["hash"], line["signature"]) == (3, checkpoint.hash, checkpoint.signature)
    assert audit_seal().sealed == 0  # nothing new: no new checkpoint
    assert AuditCheckpoint.objects.count() == 1


def test_a_full_rewrite_with_every_later_hash_recomputed_is_caught_by_the_checkpoints() -> None:
    _record(3)
    _seal()  # checkpoint at #3
    _record(3, label="bob")
    _seal()  # checkpoint at #6
    _rewrite(5, actor_label="mallory")
    assert audit_verify_chain(seal=False).ok is False

    # Even with the database's own checkpoints gone, the file outside it still holds them.
    tamper_with_audit("DELETE FROM portal_auditcheckpoint")
    result = audit_verify_chain()

    assert not result.ok
    assert result.broken_sequence == 4  # the first event after the last checkpoint that still matches
    assert "from #4 to #6 does not match the checkpoint" in result.reason
    assert settings.AUDIT_CHECKPOINT_PATH.name in result.reason
    with pytest.raises(CommandError, match="BROKEN at event #4") as excinfo:
        call_command("audit_verify")
    assert excinfo.value.returncode == 1


def test_a_checkpoint_not_signed_with_the_key_is_refused() -> None:
    _record(2)
    _seal()
    lines = Path(settings.AUDIT_CHECKPOINT_PATH).read_text().splitlines()
    forged = json.loads(lines[0]) | {"signature": "0" * 64}
    Path(settings.AUDIT_CHECKPOINT_PATH).write_text(json.dumps(forged) + "\n")

    result = audit_verify_chain()

    assert (result.ok, result.broken_sequence) == (False, 2)
    assert "not signed with AUDIT_SIGNING_KEY" in result.reason


def test_checkpoints_signed_with_a_retired_key_still_verify(settings: Any) -> None:
    settings.AUDIT_SIGNING_KEY = "old-" + "k" * 40
    _record(2)
    _seal()
    settings.AUDIT_SIGNING_KEY = "new-" + "k" * 40
    assert not audit_verify_chain().ok
    settings.AUDIT_SIGNING_KEYS_RETIRED = ["old-" + "k" * 40]
    assert audit_verify_chain().ok


def test_the_database_lets_the_sealer_set_the_chain_columns_once_and_refuses_every_other_change() -> None:
    [event_id] = _record(1)
    with connection.cursor() as cursor:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("UPDATE portal_auditevent SET action = 'forged' WHERE id = %s", [event_id])
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(
                "UPDATE portal_auditevent SET action = 'forged', sequence = 1, prev_hash = 'x', hash = 'y' "
                "WHERE id = %s",
                [event_id],
            )
        _seal()
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("UPDATE portal_auditevent SET hash = 'z' WHERE id = %s", [event_id])
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [event_id])
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("UPDATE portal_auditcheckpoint SET hash = 'z'")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("DELETE FROM portal_auditcheckpoint")
    assert audit_verify_chain().ok


def _event_at(pk: int, *, age: timedelta = timedelta(0)) -> None:
    AuditEvent(
        id=pk,
        occurred_at=timezone.now() - age,
        actor_kind="system",
        actor_label="system",
        action="test.gap",
        object_type="test.thing",
        object_id=str(pk),
    ).save(force_insert=True)


def test_the_sealer_waits_at_a_young_gap_passes_an_old_one_and_chains_a_late_event_at_the_end() -> None:
    _record(1)
    _seal()
    base = AuditChainHead.objects.get().last_event_id
    minute = timedelta(seconds=60)
    _event_at(base + 1)
    _event_at(base + 3)  # base + 2 is taken by a transaction that has not committed

    assert (_seal(grace=minute).sealed, AuditEvent.objects.filter(hash__isnull=True).count()) == (1, 1)

    _event_at(base + 2)  # it commits
    assert _seal(grace=minute).sealed == 2
    _event_at(base + 5, age=2 * minute)  # base + 4 was taken long ago: rolled back
    assert _seal(grace=minute).sealed == 1
    _event_at(base + 4)  # ... or it committed very late: chained after what was sealed meanwhile
    assert _seal(grace=minute).sealed == 1

    by_id = dict(AuditEvent.objects.filter(pk__gt=base).values_list("id", "sequence"))
    assert [by_id[base + i] for i in (1, 2, 3, 5, 4)] == [2, 3, 4, 5, 6]
    result = audit_verify_chain()
    assert (result.ok, result.checked, result.waiting) == (True, 6, 0)


def test_the_beat_task_seals() -> None:
    _record(2)
    audit_seal_task()
    assert not AuditEvent.objects.filter(hash__isnull=True).exists()


def test_audit_verify_reports_events_checkpoints_and_what_waits(capsys: Any) -> None:
    _record(3)
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("audit_verify")
    assert "3 events verified, 1 signed checkpoint(s) matched" in capsys.readouterr().out


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_audited_writes_of_unrelated_transactions_do_not_wait_for_each_other() -> None:
    """One transaction has written its event and not committed; another one's audited write commits at once
    (with the chain head lock of old it waited for the first to end)."""
    written, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                audit_record(action="test.slow", object_type="test.thing", object_id=1)
                written.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert written.wait(10)
        started = time.monotonic()
        with transaction.atomic():
            audit_record(action="test.fast", object_type="test.thing", object_id=2)
        assert time.monotonic() - started < 2
        # The sealer seals neither past the uncommitted one while it is young ...
        assert audit_seal(grace=timedelta(seconds=60)).sealed == 0
    finally:
        release.set()
        thread.join(10)
    # ... and both, in id order, once it has committed (no grace: the ids before it are other tests' rollbacks).
    assert audit_seal(grace=timedelta(0)).sealed == 2
    assert list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True)) == ["test.slow", "test.fast"]
    assert audit_verify_chain().ok
