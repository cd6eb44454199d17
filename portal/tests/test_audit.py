from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import TestCase

from portal.audit import audit_record, audit_seal, audit_verify_chain
from portal.context import Actor, acting_as
from portal.models import AppendOnlyError, AuditEvent
from portal.testing.audit import tamper_with_audit

pytestmark = pytest.mark.django_db


def _seal(**options: Any) -> None:
    """Seal, and run what waits for the commit (the checkpoint's line in the file) as a commit would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        audit_seal(**options)


def _record_three(*, seal: bool = True) -> list[AuditEvent]:
    with acting_as(Actor(kind="user", user_id=7, label="alice")):
        events = [
            audit_record(
                action="test.thing.changed",
                object_type="test.thing",
                object_id=i,
                changes={"n": {"before": i, "after": i + 1}},
            )
            for i in range(3)
        ]
    if seal:
        _seal()
    return [AuditEvent.objects.get(pk=event.pk) for event in events]


def test_it_chains_each_event_to_the_previous_one() -> None:
    first, second, third = _record_three()
    assert (first.sequence, second.sequence, third.sequence) == (1, 2, 3)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert third.actor_label == "alice"
    assert audit_verify_chain().ok


def test_it_refuses_updates_and_deletes_through_the_orm() -> None:
    event = _record_three()[0]
    event.action = "forged"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_it_detects_an_edited_row_and_names_it() -> None:
    events = _record_three()
    tamper_with_audit(
        "UPDATE portal_auditevent SET actor_label = %s WHERE sequence = %s", ["mallory", events[1].sequence]
    )

    result = audit_verify_chain()
    assert not result.ok
    assert result.broken_sequence == 2
    assert "content does not match" in result.reason
    with pytest.raises(CommandError, match="BROKEN at event #2") as excinfo:
        call_command("audit_verify")
    assert excinfo.value.returncode == 1


def test_it_detects_a_deleted_row() -> None:
    events = _record_three()
    tamper_with_audit("DELETE FROM portal_auditevent WHERE sequence = %s", [events[1].sequence])
    result = audit_verify_chain()
    assert (result.ok, result.broken_sequence) == (False, 2)
    assert "missing" in result.reason


def test_it_detects_a_truncated_tail() -> None:
    events = _record_three()
    tamper_with_audit("DELETE FROM portal_auditevent WHERE sequence = %s", [events[2].sequence])
    result = audit_verify_chain()
    assert (result.ok, result.broken_sequence) == (False, 3)


def test_it_detects_a_truncated_tail_even_with_the_head_and_checkpoints_moved_back() -> None:
    events = _record_three()
    tamper_with_audit("DELETE FROM portal_auditevent WHERE sequence = %s", [events[2].sequence])
    tamper_with_audit("DELETE FROM portal_auditcheckpoint")
    tamper_with_audit("UPDATE portal_auditchainhead SET last_sequence = 2, last_hash = %s", [events[1].hash])
    # The database agrees with itself now; the file outside it does not.
    result = audit_verify_chain(seal=False)
    assert (result.ok, result.broken_sequence) == (False, 3)
    assert "vouches for #3" in result.reason


def test_audit_verify_command_passes_on_an_intact_chain(capsys: Any) -> None:
    _record_three()
    call_command("audit_verify")
    assert "3 events verified" in capsys.readouterr().out


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_itself_refuses_raw_updates() -> None:
    event = _record_three()[0]
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE portal_auditevent SET action = 'x' WHERE id = %s", [event.pk])


def test_it_records_request_id_actor_and_client_address(client: Any, make_user: Any) -> None:
    client.force_login(make_user("alice"))
    client.post(
        "/tokens/",
        {"name": "laptop", "scopes": ["read"], "expires_in_days": 30},
        HTTP_X_REQUEST_ID="req-12345678",
        REMOTE_ADDR="10.1.2.3",
    )
    event = AuditEvent.objects.get(action="token.issued")
    assert (event.request_id, event.actor_label, event.actor_kind, event.client_ip) == (
        "req-12345678",
        "alice",
        "user",
        "10.1.2.3",
    )


def test_deferred_events_are_appended_together_at_the_end_of_the_block_with_their_own_actors() -> None:
    from portal.audit import audit_deferred

    audit_record(action="test.before", object_type="test.thing", object_id=0)
    with transaction.atomic(), audit_deferred():
        with acting_as(Actor(kind="user", user_id=7, label="alice")):
            assert audit_record(action="test.first", object_type="test.thing", object_id=1) is None
        with audit_deferred(), acting_as(Actor(kind="system", user_id=None, label="system (test)")):  # nested: joins
            audit_record(action="test.second", object_type="test.thing", object_id=2)
        assert not AuditEvent.objects.filter(action__in=["test.first", "test.second"]).exists()
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [(e.action, e.actor_label) for e in events[1:]] == [
        ("test.first", "alice"),
        ("test.second", "system (test)"),
    ]
    assert [e.pk for e in events] == sorted(e.pk for e in events)
    assert events[1].occurred_at <= events[2].occurred_at
    assert audit_verify_chain().ok
    assert [e.sequence for e in AuditEvent.objects.order_by("id")] == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_deferred_events_of_a_failed_block_are_dropped_and_a_block_needs_a_transaction() -> None:
    from portal.audit import audit_deferred

    with pytest.raises(RuntimeError, match="needs a transaction"), audit_deferred():
        pass

    def failing_block() -> None:
        with transaction.atomic(), audit_deferred():
            audit_record(action="test.lost", object_type="test.thing", object_id=1)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        failing_block()
    assert not AuditEvent.objects.exists()
    audit_record(action="test.after", object_type="test.thing", object_id=2)
    assert audit_verify_chain().ok
    assert AuditEvent.objects.get().sequence == 1
