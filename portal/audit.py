"""The tamper-evident audit trail: every state change appends one hash-chained event in the same transaction."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from portal.context import Actor, client_ip_var, current_actor, request_id_var
from portal.db import insert_without_ids
from portal.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
# Batches this small go in one INSERT; bigger ones (imports) stream through COPY.
_COPY_FROM = 50
# For a caller that copies chained rows itself, a part at a time (catalog.importing): the rows as tuples of these
# columns (`audit_event_tuples`), then `audit_head_move` to the last row written, in the transaction that locked
# the head.
AUDIT_EVENT_COLUMNS: Final = [field.attname for field in AuditEvent._meta.concrete_fields if not field.primary_key]
_deferred: ContextVar[list[dict[str, Any]] | None] = ContextVar("audit_deferred", default=None)


# The encoders json.dumps(value, default=str, sort_keys=True) and the canonical json.dumps would build on every
# call, built once: the same output, for a third less of an import's per-event audit cost.
_SAFE_ENCODER: Final = json.JSONEncoder(default=str, sort_keys=True)
_CANONICAL_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# Values that come back from a JSON round trip as they went in.
_PLAIN: Final = frozenset({str, int, bool, type(None)})


def _json_safe(value: Any) -> Any:
    """Round-trip through JSON so what we hash is exactly what the database gives back."""
    if type(value) is dict and all(type(k) is str and type(v) in _PLAIN for k, v in value.items()):
        return dict(sorted(value.items()))  # what the round trip gives (keys sorted), several times faster
    return json.loads(_SAFE_ENCODER.encode(value))


def event_digest(
    *,
    sequence: int,
    occurred_at: datetime,
    actor_kind: str,
    actor_user_id: int | None,
    actor_label: str,
    actor_token_id: int | None,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    changes: Any,
    request_id: str,
    client_ip: str | None,
    prev_hash: str,
) -> str:
    payload = {
        "sequence": sequence,
        "occurred_at": _timestamp(occurred_at),
        "actor_kind": actor_kind,
        "actor_user_id": actor_user_id,
        "actor_label": actor_label,
        "actor_token_id": actor_token_id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr,
        "changes": changes,
        "request_id": request_id,
        "client_ip": client_ip,
        "prev_hash": prev_hash,
    }
    return _hash(payload)


def _timestamp(occurred_at: datetime) -> str:
    return occurred_at.astimezone(UTC).isoformat(timespec="microseconds")


def _hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(_CANONICAL_ENCODER.encode(payload).encode()).hexdigest()


def _digest_of(event: AuditEvent) -> str:
    return event_digest(
        sequence=event.sequence,
        occurred_at=event.occurred_at,
        actor_kind=event.actor_kind,
        actor_user_id=event.actor_user_id,
        actor_label=event.actor_label,
        actor_token_id=event.actor_token_id,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        object_repr=event.object_repr,
        changes=event.changes,
        request_id=event.request_id,
        client_ip=event.client_ip,
        prev_hash=event.prev_hash,
    )


def _head_table() -> str:
    return connection.ops.quote_name(AuditChainHead._meta.db_table)


def _locked_head() -> tuple[int, str]:
    """The chain head's sequence and hash, locked until the transaction ends. Hand-built, as is its update: every
    audited transition takes the head, and the ORM's get() and update() cost several times their statements."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite: the write lock serialises
    sql = f"SELECT last_sequence, last_hash FROM {_head_table()} WHERE id = 1{lock}"  # noqa: S608 (names are ours)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
        if row is None:
            try:
                with transaction.atomic():
                    AuditChainHead.objects.create(id=1, last_sequence=0, last_hash=GENESIS_HASH)
            except IntegrityError:
                pass  # another writer created it first
            cursor.execute(sql)
            row = cursor.fetchone()
    return int(row[0]), str(row[1])


def object_type_of(target: models.Model) -> str:
    return f"{target._meta.app_label}.{target._meta.model_name}"


def audit_record(
    *,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    object_repr: str = "",
    changes: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEvent | None:
    """Append one event. Call it inside the transaction that makes the change, so both land or neither does.
    Inside `audit_deferred()` the event is held and appended with the block's others (the return is then None)."""
    if target is not None:
        object_type = object_type or object_type_of(target)
        object_id = object_id or target.pk
        object_repr = object_repr or str(target)
    spec = {
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr,
        "changes": changes,
        "actor": actor or current_actor(),
    }
    pending = _deferred.get()
    if pending is not None:
        pending.append(spec)
        return None
    return audit_record_many([spec])[0]


@contextlib.contextmanager
def audit_deferred() -> Iterator[None]:
    """Hold the block's audit appends and write them together at its end, still inside the caller's transaction.

    The chain head is then locked once, just before the commit, instead of from the first append until the
    commit: concurrent workflows queue on it for less time, and N events cost three queries instead of 3N.
    Use it around a block that commits or rolls back as a whole (it must not swallow errors of inner
    savepoints, or their rolled-back changes would still be audited). Nested uses join the outer one."""
    if _deferred.get() is not None:
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("audit_deferred() needs a transaction: the events must land with the changes.")
    token = _deferred.set([])
    try:
        yield
        pending = _deferred.get() or []
    finally:
        _deferred.reset(token)
    if pending:
        audit_record_many(pending)


def audit_record_many(events: list[dict[str, Any]], *, actor: Actor | None = None) -> list[AuditEvent]:
    """Append many events under one lock. Each dict: action, target (or object_type and object_id), changes;
    optionally its own actor (deferred events keep who recorded them). Times are taken under the lock, so they
    never run backwards along the chain.

    One event comes back saved, with its id; a few come back without ids; a large batch (an import's, 50 or
    more) streams through COPY as plain values and returns an empty list: nobody reads those back, and building
    a model instance per event cost more than writing it."""
    # No savepoint: a failure here fails the caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        return audit_events_write(audit_events_chain(events, head=audit_head_lock(), actor=actor))


def audit_head_lock() -> tuple[int, str]:
    """Lock the chain head until the transaction ends; its (sequence, hash), for `audit_events_chain`.

    With `audit_events_chain` and `audit_events_write`, the steps of `audit_record_many`, for a caller that chains
    its events while its connection is busy with other writes: it locks first, then chains, then writes, all in
    one transaction. catalog.importing copies the chained rows itself and ends with `audit_head_move`."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_head_lock() needs a transaction: the lock lasts until it ends.")
    return _locked_head()


def audit_events_chain(
    events: list[dict[str, Any]], *, head: tuple[int, str], actor: Actor | None = None
) -> list[dict[str, Any]]:
    """The events' rows, hash-chained after `head` (from `audit_head_lock`); no queries."""
    default_actor = actor or current_actor()
    request_id = request_id_var.get() if request_id_var.get() != "-" else ""
    client_ip = client_ip_var.get()
    sequence, prev_hash = head
    rows: list[dict[str, Any]] = []
    now = timezone.now()
    occurred_at = _timestamp(now)
    for spec in events:
        target = spec.get("target")
        who = spec.get("actor") or default_actor
        sequence += 1
        values = {
            "sequence": sequence,
            "occurred_at": now,
            "actor_kind": who.kind,
            "actor_user_id": who.user_id,
            "actor_label": who.label[:200],
            "actor_token_id": who.token_id,
            "action": spec["action"],
            "object_type": spec.get("object_type") or (object_type_of(target) if target is not None else ""),
            "object_id": str(spec.get("object_id") or (target.pk if target is not None else "")),
            "object_repr": (spec.get("object_repr") or (str(target) if target is not None else ""))[:300],
            "changes": _json_safe(dict(spec.get("changes") or {})),
            "request_id": request_id,
            "client_ip": client_ip,
            "prev_hash": prev_hash,
        }
        # event_digest(**values), with the batch's one timestamp formatted once
        values["hash"] = prev_hash = _hash({**values, "occurred_at": occurred_at})
        rows.append(values)
    return rows


def audit_events_write(rows: list[dict[str, Any]]) -> list[AuditEvent]:
    """Write rows of `audit_events_chain` and move the head (locked by `audit_head_lock`) to the last."""
    saved: list[AuditEvent] = []
    if len(rows) >= _COPY_FROM:
        from catalog.bulk import copy_rows

        copy_rows(AuditEvent, AUDIT_EVENT_COLUMNS, audit_event_tuples(rows))
    elif rows:
        saved = [AuditEvent(**values) for values in rows]
        if len(saved) == 1:
            saved[0].save(force_insert=True)  # gets its id: audit_record returns it
        else:
            insert_without_ids(AuditEvent, saved)  # a workflow's few events; nobody reads their ids
    if rows:
        audit_head_move(rows[-1])
    return saved


def audit_event_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(values[c] for c in AUDIT_EVENT_COLUMNS) for values in rows]


def audit_head_move(last_row: Mapping[str, Any]) -> None:
    """Point the chain head (locked by `audit_head_lock`) at the last row written."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_head_table()} SET last_sequence = %s, last_hash = %s WHERE id = 1",  # noqa: S608
            [last_row["sequence"], last_row["hash"]],
        )


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": old, "after": new}} for the fields whose values differ."""
    changed: dict[str, dict[str, Any]] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if _json_safe(old) != _json_safe(new):
            changed[name] = {"before": old, "after": new}
    return changed


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    return {name: _json_safe(getattr(instance, name)) for name in fields}


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    broken_sequence: int | None = None
    reason: str = ""


def audit_verify_chain() -> ChainVerification:
    """Walk the chain in order; name the first event whose hash, link or position is wrong."""
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000):
        if event.sequence != expected_sequence:
            return ChainVerification(
                False,
                checked,
                expected_sequence,
                f"event #{expected_sequence} is missing (next is #{event.sequence})",
            )
        if event.prev_hash != expected_prev:
            return ChainVerification(False, checked, event.sequence, "its prev_hash does not match the event before it")
        if _digest_of(event) != event.hash:
            return ChainVerification(False, checked, event.sequence, "its content does not match its hash")
        expected_prev = event.hash
        expected_sequence += 1
        checked += 1
    head = AuditChainHead.objects.filter(id=1).first()
    last_sequence = expected_sequence - 1
    if head is not None and (head.last_sequence != last_sequence or head.last_hash != expected_prev):
        return ChainVerification(
            False,
            checked,
            last_sequence + 1,
            f"the chain ends at #{last_sequence} but #{head.last_sequence} was written",
        )
    return ChainVerification(True, checked)
