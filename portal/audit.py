"""The tamper-evident audit trail.

Every state change appends one event in the same transaction, with no lock: events take their order from their
ids. A sealer (`audit_seal`: a beat task, and `audit_verify` before it checks) then extends the hash chain over
the committed events in id order and signs a checkpoint of the chain head with AUDIT_SIGNING_KEY, which it also
appends to a file outside the database. So audited writes of unrelated requests never wait for each other, and a
rewrite of rows (even with every later hash recomputed) disagrees with the signed checkpoints.

An id is taken when a row is inserted, but the row is seen only when its transaction commits, which may be after
a higher id commits. The sealer does not seal past such a gap until it fills or is older than
AUDIT_SEAL_GRACE_SECONDS (then its transaction is taken as rolled back); an event that commits even later is
chained after the events sealed meanwhile, so no committed event is ever left out of the chain.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from portal.context import Actor, client_ip_var, current_actor, request_id_var
from portal.models import AuditChainHead, AuditCheckpoint, AuditEvent

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# What an event is made of, for a caller that copies rows itself (catalog.importing, `audit_event_tuples`); the
# sealer adds the chain columns (sequence, prev_hash, hash) later.
_CHAIN_COLUMNS: Final = frozenset({"sequence", "prev_hash", "hash"})
AUDIT_EVENT_COLUMNS: Final = [
    field.attname
    for field in AuditEvent._meta.concrete_fields
    if not field.primary_key and field.attname not in _CHAIN_COLUMNS
]
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
    if event.sequence is None or event.prev_hash is None:  # both callers give the event its place first
        raise ValueError(f"audit event {event.pk} has no place in the chain yet")
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
    """Hold the block's audit appends and write them together at its end, still inside the caller's transaction:
    N events cost one INSERT instead of N. Use it around a block that commits or rolls back as a whole (it must not
    swallow errors of inner savepoints, or their rolled-back changes would still be audited). Nested uses join the
    outer one."""
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
    """Append many events. Each dict: action, target (or object_type and object_id), changes; optionally its own
    actor (deferred events keep who recorded them). No lock: the events take their order from their ids, and the
    sealer chains them after the transaction commits (`audit_seal`).

    One event comes back saved, with its id; several come back without ids (nobody reads them back)."""
    rows = audit_event_rows(events, actor=actor)
    if len(rows) == 1:
        event = AuditEvent(**rows[0])
        event.save(force_insert=True)  # gets its id: audit_record returns it
        return [event]
    saved = [AuditEvent(**values) for values in rows]
    AuditEvent.objects.bulk_create(saved)
    return saved


def audit_event_rows(events: list[dict[str, Any]], *, actor: Actor | None = None) -> list[dict[str, Any]]:
    """The events' rows (AUDIT_EVENT_COLUMNS), for a caller that writes them itself (catalog.importing); no
    queries. The chain columns stay empty: the sealer fills them."""
    default_actor = actor or current_actor()
    request_id = request_id_var.get() if request_id_var.get() != "-" else ""
    client_ip = client_ip_var.get()
    rows: list[dict[str, Any]] = []
    now = timezone.now()
    for spec in events:
        target = spec.get("target")
        who = spec.get("actor") or default_actor
        rows.append(
            {
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
            }
        )
    return rows


def audit_event_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(values[c] for c in AUDIT_EVENT_COLUMNS) for values in rows]


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


# --- sealing: the hash chain, extended after commit -----------------------------------------------------------

# Events sealed per transaction: a large import's events are chained a batch at a time.
_SEAL_BATCH: Final = 5_000
# A conditional update: an event is sealed once, and only while unsealed (the database's trigger enforces the
# same). Hand-written because the ORM's update is refused for audit events (AuditEventQuerySet).
_SEAL_SQL: Final = (
    "UPDATE portal_auditevent SET sequence = %s, prev_hash = %s, hash = %s WHERE id = %s AND hash IS NULL"
)


@dataclass(frozen=True)
class SealResult:
    sealed: int
    waiting: int  # unsealed events left: after a gap younger than the grace period (or being sealed elsewhere)
    checkpoint: AuditCheckpoint | None = None


def audit_seal(*, grace: timedelta | None = None, wait: bool = True) -> SealResult:
    """Chain the committed events that are not sealed yet, in id order, and sign a checkpoint of the new head.

    Sealers take turns on the chain head's row lock; writers never touch it. With `wait=False` a sealer that finds
    another one at work returns at once (the other one seals these events too)."""
    grace = timedelta(seconds=settings.AUDIT_SEAL_GRACE_SECONDS) if grace is None else grace
    sealed = 0
    checkpoint = None
    while True:
        with transaction.atomic():
            head = _locked_head(wait=wait)
            if head is None:
                break
            events = list(AuditEvent.objects.filter(hash__isnull=True).order_by("id")[:_SEAL_BATCH])
            chained = _chain(events, head, cutoff=timezone.now() - grace)
            if chained:
                _write_seals(chained)
                head.save()
                checkpoint = _checkpoint_create(head)
        sealed += len(chained)
        if len(events) < _SEAL_BATCH or len(chained) < len(events):
            break
    return SealResult(sealed, AuditEvent.objects.filter(hash__isnull=True).count(), checkpoint)


def _locked_head(*, wait: bool) -> AuditChainHead | None:
    heads = AuditChainHead.objects.select_for_update(skip_locked=not wait).filter(id=1)
    head = heads.first()
    if head is None and not AuditChainHead.objects.filter(id=1).exists():
        try:
            with transaction.atomic():
                AuditChainHead.objects.create(id=1, last_sequence=0, last_hash=GENESIS_HASH, last_event_id=0)
        except IntegrityError:
            pass  # another sealer created it first
        head = heads.first()
    return head


def _chain(events: list[AuditEvent], head: AuditChainHead, *, cutoff: datetime) -> list[AuditEvent]:
    """Give each event its place after `head` (moved along); stop at a gap in the ids that may still fill."""
    chained = []
    for event in events:
        if event.pk > head.last_event_id:
            if event.pk != head.last_event_id + 1 and event.occurred_at > cutoff:
                break  # an earlier id's transaction may still commit: wait for it, up to the grace period
            head.last_event_id = event.pk
        # else: it committed after the chain passed its id; it is chained at the end, never left out
        head.last_sequence += 1
        event.sequence = head.last_sequence
        event.prev_hash = head.last_hash
        event.hash = head.last_hash = _digest_of(event)
        chained.append(event)
    return chained


def _write_seals(events: list[AuditEvent]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(_SEAL_SQL, [(e.sequence, e.prev_hash, e.hash, e.pk) for e in events])
        if cursor.rowcount not in (-1, len(events)):
            raise IntegrityError("audit events were sealed by another sealer meanwhile")


# --- checkpoints: the chain head, signed, in the database and in a file outside it ------------------------------


def _signing_keys() -> list[bytes]:
    """The current key first, then retired ones (still accepted for old checkpoints). Outside production, without
    a key, one derived from SECRET_KEY."""
    current = (
        settings.AUDIT_SIGNING_KEY
        or hmac.new(settings.SECRET_KEY.encode(), b"portal.audit.checkpoints", hashlib.sha256).hexdigest()
    )
    return [key.encode() for key in [current, *settings.AUDIT_SIGNING_KEYS_RETIRED]]


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def _signed_text(*, sequence: int, hash: str, event_id: int, created_at: datetime) -> bytes:
    payload = {"sequence": sequence, "hash": hash, "event_id": event_id, "created_at": _timestamp(created_at)}
    return _CANONICAL_ENCODER.encode(payload).encode()


def _sign(key: bytes, **fields: Any) -> str:
    return hmac.new(key, _signed_text(**fields), hashlib.sha256).hexdigest()


def _checkpoint_create(head: AuditChainHead) -> AuditCheckpoint:
    key = _signing_keys()[0]
    fields = {
        "sequence": head.last_sequence,
        "hash": head.last_hash,
        "event_id": head.last_event_id,
        "created_at": timezone.now(),
    }
    checkpoint = AuditCheckpoint.objects.create(**fields, key_id=_key_id(key), signature=_sign(key, **fields))
    transaction.on_commit(lambda: _checkpoint_append(checkpoint))
    return checkpoint


def _checkpoint_append(checkpoint: AuditCheckpoint) -> None:
    """Append the committed checkpoint to the file. A failure is logged, not raised: the database copy stands,
    and `audit_verify` names checkpoints the file lacks."""
    line = json.dumps(
        {
            "sequence": checkpoint.sequence,
            "hash": checkpoint.hash,
            "event_id": checkpoint.event_id,
            "created_at": _timestamp(checkpoint.created_at),
            "key_id": checkpoint.key_id,
            "signature": checkpoint.signature,
        },
        sort_keys=True,
    )
    path = Path(settings.AUDIT_CHECKPOINT_PATH)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as sink:
            sink.write(line + "\n")
            sink.flush()
            os.fsync(sink.fileno())
    except OSError:
        logger.exception("audit checkpoint #%s could not be appended to %s", checkpoint.sequence, path)


@dataclass(frozen=True)
class _Anchor:
    sequence: int
    hash: str
    event_id: int
    created_at: datetime
    key_id: str
    signature: str
    where: str  # "database" or the file's path and line


def _file_anchors(path: Path) -> tuple[list[_Anchor], list[str]]:
    anchors: list[_Anchor] = []
    problems: list[str] = []
    if not path.exists():
        return anchors, problems
    with path.open(encoding="utf-8") as source:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                anchors.append(
                    _Anchor(
                        sequence=int(data["sequence"]),
                        hash=str(data["hash"]),
                        event_id=int(data["event_id"]),
                        created_at=datetime.fromisoformat(data["created_at"]),
                        key_id=str(data["key_id"]),
                        signature=str(data["signature"]),
                        where=f"{path}:{number}",
                    )
                )
            except (ValueError, KeyError, TypeError):
                problems.append(f"{path}:{number} is not a checkpoint line")
    return anchors, problems


def _database_anchors() -> list[_Anchor]:
    return [
        _Anchor(c.sequence, c.hash, c.event_id, c.created_at, c.key_id, c.signature, "database")
        for c in AuditCheckpoint.objects.order_by("sequence")
    ]


def _signature_ok(anchor: _Anchor) -> bool:
    for key in _signing_keys():
        if _key_id(key) == anchor.key_id:
            expected = _sign(
                key,
                sequence=anchor.sequence,
                hash=anchor.hash,
                event_id=anchor.event_id,
                created_at=anchor.created_at,
            )
            return hmac.compare_digest(expected, anchor.signature)
    return False


# --- verification ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    broken_sequence: int | None = None
    reason: str = ""
    waiting: int = 0  # committed events not sealed yet (too recent, after a gap)
    checkpoints: int = 0  # checkpoints that matched the chain
    notes: tuple[str, ...] = ()


def audit_verify_chain(*, seal: bool = True) -> ChainVerification:
    """Seal what is ready, then check every sealed row (its content against its hash), the chain (each link and
    position) and every checkpoint, in the database and in the file (signature, and the chain's hash at its
    sequence); name the first event that disagrees."""
    waiting = audit_seal().waiting if seal else AuditEvent.objects.filter(hash__isnull=True).count()
    path = Path(settings.AUDIT_CHECKPOINT_PATH)
    in_file, notes = _file_anchors(path)
    in_database = _database_anchors()
    anchors: dict[int, list[_Anchor]] = {}
    for anchor in [*in_database, *in_file]:
        anchors.setdefault(anchor.sequence, []).append(anchor)
    filed = {anchor.sequence for anchor in in_file}
    unfiled = [anchor.sequence for anchor in in_database if anchor.sequence not in filed]
    if unfiled:
        notes.append(f"{len(unfiled)} checkpoint(s) are in the database but not in {path} (first #{unfiled[0]})")
    result = _walk(anchors, waiting)
    return ChainVerification(
        result.ok,
        result.checked,
        result.broken_sequence,
        result.reason,
        waiting,
        result.checkpoints,
        tuple(notes),
    )


def _walk(anchors: dict[int, list[_Anchor]], waiting: int) -> ChainVerification:
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    last_good = 0  # the sequence of the last checkpoint the chain matched
    matched = 0

    def broken(sequence: int, reason: str) -> ChainVerification:
        return ChainVerification(False, expected_sequence - 1, sequence, reason, waiting, matched)

    sealed = AuditEvent.objects.filter(hash__isnull=False).order_by("sequence")
    for event in sealed.iterator(chunk_size=2000):
        if event.sequence != expected_sequence:
            return broken(expected_sequence, f"event #{expected_sequence} is missing (next is #{event.sequence})")
        if event.prev_hash != expected_prev:
            return broken(event.sequence, "its prev_hash does not match the event before it")
        if _digest_of(event) != event.hash:
            return broken(event.sequence, "its content does not match its hash")
        for anchor in anchors.get(event.sequence, []):
            if not _signature_ok(anchor):
                return broken(
                    event.sequence,
                    f"the checkpoint at #{event.sequence} ({anchor.where}) is not signed with AUDIT_SIGNING_KEY "
                    f"(key id {anchor.key_id})",
                )
            if anchor.hash != event.hash:
                return broken(
                    last_good + 1,
                    f"the chain from #{last_good + 1} to #{event.sequence} does not match the checkpoint signed "
                    f"{_timestamp(anchor.created_at)} ({anchor.where}): an event in it was rewritten",
                )
            matched += 1
        if event.sequence in anchors:
            last_good = event.sequence
        expected_prev = event.hash
        expected_sequence += 1
    last_sequence = expected_sequence - 1
    beyond = [sequence for sequence in anchors if sequence > last_sequence]
    if beyond:
        first = min(beyond)
        return broken(
            last_sequence + 1,
            f"the chain ends at #{last_sequence} but a checkpoint ({anchors[first][0].where}) vouches for #{first}",
        )
    head = AuditChainHead.objects.filter(id=1).first()
    if head is not None and (head.last_sequence != last_sequence or head.last_hash != expected_prev):
        return broken(last_sequence + 1, f"the chain ends at #{last_sequence} but #{head.last_sequence} was written")
    return ChainVerification(True, last_sequence, waiting=waiting, checkpoints=matched)
