"""Automated checks of a round: claim them under a lease, run them outside any transaction, record the
outcomes, then evaluate the round (changes requested, the first review stage, or approval)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from approvals import notifications
from approvals.checks import CHECK_TITLES, CheckResult, CheckTransientError, Subject, run_round
from approvals.decisions import _approve, _enter_stage, _to_changes_requested
from approvals.models import ApprovalRequest, CheckRun
from approvals.policies import policy_snapshot
from approvals.services import (
    CHECK_MAX_ATTEMPTS,
    OWNER_ATTESTATION_ROLE,
    _check_lease,
    _locked,
    _system,
    snapshot_problem,
    subject_of,
)
from portal.audit import audit_deferred, audit_record
from portal.context import acting_as
from portal.net import SafeHttpClient


@dataclass(frozen=True)
class ClaimedCheck:
    """A check this run claimed, with what the run needs of its request: the subject's ids and how many checks
    the round has (the same on every claimed row)."""

    id: int
    name: str
    attempts: int
    agent_id: int | None = None
    tool_id: int | None = None
    grant_id: int | None = None
    round_size: int = 0
    proposed_changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChecksOutcome:
    """What one run of a round's checks did; `retry_in` is set when a check should be tried again later."""

    claimed: int
    retry_in: int | None = None


def _claim_checks(request_id: int, round_number: int) -> list[ClaimedCheck]:
    """Claim the round's checks that nobody runs: pending ones, and running ones whose lease expired (their
    worker died). One conditional UPDATE ... RETURNING, so two deliveries never claim the same check; a duplicate
    delivery during a live run finds nothing to claim. The claim also returns the request's subject ids and the
    round's number of checks, which the run needs next.

    Hand-written because it is a conditional-update claim that must return what it claimed: the ORM's version
    (lock the candidates, then update them) cost bench.approvals 12 ms of CPU per workflow, and reading the
    subject's ids and the round's size with the ORM afterwards cost it another query and 1.2 ms per workflow."""
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    quote = connection.ops.quote_name
    table, requests = quote(CheckRun._meta.db_table), quote(ApprovalRequest._meta.db_table)
    of_request = f"FROM {requests} WHERE id = %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, attempts = attempts + 1, lease_until = %s, started_at = %s "  # noqa: S608 (names are ours)
            "WHERE request_id = %s AND round = %s AND (status = %s OR (status = %s AND lease_until < %s)) "
            f"RETURNING id, name, attempts, (SELECT agent_id {of_request}), (SELECT tool_id {of_request}), "
            f"(SELECT grant_id {of_request}), (SELECT COUNT(*) FROM {table} WHERE request_id = %s AND round = %s), "
            f"(SELECT proposed_changes {of_request})",
            [
                CheckRun.Status.RUNNING,
                adapt(now + _check_lease()),
                adapt(now),
                request_id,
                round_number,
                CheckRun.Status.PENDING,
                CheckRun.Status.RUNNING,
                adapt(now),
                request_id,
                request_id,
                request_id,
                request_id,
                round_number,
                request_id,
            ],
        )
        claimed = []
        for id_, name, attempts, agent_id, tool_id, grant_id, round_size, proposed in cursor.fetchall():
            if isinstance(proposed, str):  # the JSON column, as its text from a raw cursor
                proposed = json.loads(proposed)
            claimed.append(ClaimedCheck(id_, name, attempts, agent_id, tool_id, grant_id, round_size, proposed or {}))
        return claimed


def checks_run(*, request_id: int, round_number: int) -> ChecksOutcome:
    """Run the round's unclaimed checks, record each one's outcome, and move the request on when all are done.

    A check that cannot get an answer (CheckTransientError) goes back to pending and is tried again after a
    backoff, up to CHECK_MAX_ATTEMPTS; then it is recorded as an error. It never passes silently."""
    claimed = _claim_checks(request_id, round_number)
    if not claimed:
        # A redelivery after a worker died between a round's commit and its sending: send what it left.
        notifications.notifications_send(notifications.notifications_unsent(request_id))
        return ChecksOutcome(claimed=0)
    first = claimed[0]
    request = ApprovalRequest(
        pk=request_id,
        agent_id=first.agent_id,
        tool_id=first.tool_id,
        grant_id=first.grant_id,
        proposed_changes=first.proposed_changes,
    )
    subject = subject_of(request, with_capabilities=True, with_owner=False)
    with SafeHttpClient().session() as http:
        by_name = run_round((c.name for c in claimed), subject, http)
    outcomes = {c.id: by_name[c.name] for c in claimed}
    retry = [c for c in claimed if isinstance(outcomes[c.id], CheckTransientError) and c.attempts < CHECK_MAX_ATTEMPTS]
    # The transition's notifications go out from this task once it has committed, not as a message each.
    with notifications.sent_by_caller() as created:
        _checks_record(
            request_id, round_number, claimed, outcomes, subject, whole_round=len(claimed) == first.round_size
        )
    if created:
        transaction.on_commit(lambda: notifications.notifications_send(created))
    if retry:
        return ChecksOutcome(claimed=len(claimed), retry_in=min(2 ** max(c.attempts for c in retry), 60))
    return ChecksOutcome(claimed=len(claimed))


def _checks_record(
    request_id: int,
    round_number: int,
    claimed: list[ClaimedCheck],
    outcomes: dict[int, CheckResult | CheckTransientError],
    subject: Subject,
    *,
    whole_round: bool = False,
) -> None:
    """Record the outcomes in one transaction with the evaluation. Only our own claims are written (the UPDATE
    matches the attempt we claimed): a check whose lease expired and was claimed again belongs to the newer run.

    When our claim covered the whole round (`whole_round`) and every write landed, the round's checks are exactly
    what we just wrote, so they are evaluated without reading them back."""
    now = timezone.now()
    written: list[CheckRun] = []
    for claim in claimed:
        outcome = outcomes[claim.id]
        check = CheckRun(pk=claim.id, request_id=request_id, round=round_number, name=claim.name)
        check.attempts, check.output, check.finished_at = claim.attempts, None, None
        if isinstance(outcome, CheckResult):
            check.status = CheckRun.Status.PASSED if outcome.passed else CheckRun.Status.FAILED
            check.summary, check.output, check.finished_at = outcome.summary[:500], outcome.details, now
        elif claim.attempts < CHECK_MAX_ATTEMPTS:
            check.status, check.summary = CheckRun.Status.PENDING, str(outcome)[:500]
        else:
            check.status, check.finished_at = CheckRun.Status.ERROR, now
            check.summary = f"Could not complete after {claim.attempts} attempts: {outcome}"[:500]
        written.append(check)
    with transaction.atomic(), audit_deferred():
        request = _locked(request_id, subject=subject)
        landed = _write_outcomes(written)
        if whole_round and landed == len(written):
            checks = sorted(written, key=lambda c: c.name)
        else:
            checks = list(CheckRun.objects.filter(request_id=request_id, round=round_number).order_by("name"))
        _evaluate_locked(request, checks, round_number, subject)


def _write_outcomes(checks: list[CheckRun]) -> int:
    """UPDATE each check still held by our claim (running, at the attempt we claimed); how many were. An output
    or finish time of None leaves the column as it is (a check going back to pending keeps both).

    Hand-written because it is the write-back of a conditional-update claim, one statement per check sent as one
    batch: the ORM's (an update per check, or bulk_update's CASE) cost bench.approvals 20 ms of CPU per workflow."""
    table = connection.ops.quote_name(CheckRun._meta.db_table)
    output = CheckRun._meta.get_field("output")
    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        [
            check.status,
            check.summary,
            None if check.output is None else output.get_db_prep_save(check.output, connection),
            adapt(check.finished_at),
            check.pk,
            CheckRun.Status.RUNNING,
            check.attempts,
        ]
        for check in checks
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET status = %s, summary = %s, output = COALESCE(%s, output), "  # noqa: S608 (names are ours)
            "finished_at = COALESCE(%s, finished_at), lease_until = NULL "
            "WHERE id = %s AND status = %s AND attempts = %s",
            rows,
        )
        return int(cursor.rowcount)


def request_checks_evaluate(*, request_id: int, round_number: int) -> ApprovalRequest | None:
    """When every check of the round has finished, move the request on. Idempotent: only the first caller
    that finds the request still checking in this round does anything."""
    with transaction.atomic(), audit_deferred():
        request = _locked(request_id)
        checks = list(request.checks.filter(round=round_number))
        return _evaluate_locked(request, checks, round_number, None)


def _evaluate_locked(
    request: ApprovalRequest, checks: list[CheckRun], round_number: int, subject: Subject | None
) -> ApprovalRequest | None:
    if request.state != ApprovalRequest.State.CHECKING or request.round != round_number:
        return None
    if any(c.status in (CheckRun.Status.PENDING, CheckRun.Status.RUNNING) for c in checks):
        return None
    with acting_as(_system()):
        audit_record(
            action="approvals.request.checks_completed",
            target=request,
            changes={
                "round": round_number,
                "checks": {c.name: {"status": c.status, "summary": c.summary, "attempts": c.attempts} for c in checks},
            },
        )
        _adopt_recomputed_risk(request, checks)
        failed = [c for c in checks if c.status in (CheckRun.Status.FAILED, CheckRun.Status.ERROR)]
        if failed:
            reasons = [f"{CHECK_TITLES.get(c.name, c.name)}: {c.summary}" for c in failed]
            _to_changes_requested(request, reasons=reasons, by="automated checks")
            return request
        policy = request.policy_snapshot
        problem = snapshot_problem(policy)
        if problem is not None:
            # Never an endless retry: the request waits where people see it until a platform admin resolves it.
            _to_changes_requested(request, reasons=[problem], by="approval policy")
            return request
        if policy.get("auto_approve") and not policy.get("stages"):
            if policy.get("requires_attestation") and request.attested_at is None:
                _enter_stage(
                    request, 0, stage={"name": "Owner attestation", "role": OWNER_ATTESTATION_ROLE, "sla_hours": 72}
                )
            else:
                _approve(request, approver=None)
            return request
        _enter_stage(request, 0)
        return request


def _adopt_recomputed_risk(request: ApprovalRequest, checks: list[CheckRun]) -> None:
    """The risk check's tier wins: a riskier subject gets the deeper policy before anyone reviews it."""
    risk_check = next((c for c in checks if c.name == "risk_recomputed" and c.status == CheckRun.Status.PASSED), None)
    if risk_check is None:
        return
    assessment = risk_check.output.get("assessment") or {}
    tier = assessment.get("tier")
    if tier and tier != request.tier:
        before = request.tier
        request.tier = tier
        request.risk = assessment
        request.policy_snapshot = policy_snapshot(tier)
        request.save(update_fields=["tier", "risk", "policy_snapshot", "updated_at"])
        audit_record(
            action="approvals.request.rescored", target=request, changes={"tier": {"before": before, "after": tier}}
        )
