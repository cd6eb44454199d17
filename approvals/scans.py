"""Periodic scans run by Celery beat: SLA escalation, requeue of stale checks, grant expiry,
recertification requests and expiry of stale requests."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from approvals import notifications
from approvals.decisions import _finish
from approvals.models import ApprovalRequest, CheckRun
from approvals.services import (
    ESCALATION_LEADS,
    RECERTIFICATION_WINDOW,
    REQUEST_MAX_AGE,
    _check_lease,
    _locked,
    _owning_team_id,
    _system,
    subject_of,
)
from approvals.submitting import _submit_locked
from catalog import scoring
from catalog.models import ToolGrant
from portal.audit import audit_record
from portal.context import acting_as
from portal.roles import (
    PLATFORM_ADMIN,
)


def sla_scan(*, now: datetime | None = None) -> dict[str, int]:
    """Reminders before the stage is due, then escalation to the stage group's leads, then platform admins.
    Each step claims the row with a conditional UPDATE, so two beats or a re-run never notify twice."""
    now = now or timezone.now()
    counts = {"reminded": 0, "escalated": 0}
    in_review = ApprovalRequest.objects.filter(state=ApprovalRequest.State.IN_REVIEW, due_at__isnull=False)
    for request in (
        in_review.filter(reminded_at__isnull=True)
        .only("pk", "due_at", "policy_snapshot", "current_stage", "state")
        .iterator()
    ):
        stage = request.stage
        window = timedelta(hours=int(stage.get("sla_hours", 48)) if stage else 48) / 4
        if request.due_at is None or now < request.due_at - window:
            continue
        with transaction.atomic():
            if (
                ApprovalRequest.objects.filter(
                    pk=request.pk, reminded_at__isnull=True, state=ApprovalRequest.State.IN_REVIEW
                ).update(reminded_at=now)
                == 1
            ):
                fresh = ApprovalRequest.objects.get(pk=request.pk)
                notifications.notify_stage(fresh, fresh.stage or {}, event="reminder")
                counts["reminded"] += 1
    for level in (1, 2):
        for request in in_review.filter(escalation_level=level - 1, due_at__lt=now).iterator():
            stage = request.stage or {}
            overdue_for = now - request.due_at if request.due_at else timedelta(0)
            if level == 2 and overdue_for < timedelta(hours=int(stage.get("sla_hours", 48))) / 2:
                continue
            with transaction.atomic():
                claimed = ApprovalRequest.objects.filter(
                    pk=request.pk, escalation_level=level - 1, state=ApprovalRequest.State.IN_REVIEW
                ).update(escalation_level=level)
                if claimed == 1:
                    target_role = (
                        ESCALATION_LEADS.get(stage.get("role", ""), PLATFORM_ADMIN) if level == 1 else PLATFORM_ADMIN
                    )
                    with acting_as(_system()):
                        audit_record(
                            action="approvals.request.escalated",
                            target=request,
                            changes={"level": level, "to": target_role},
                        )
                    notifications.notify_role(request, target_role, event=f"escalation-{level}")
                    counts["escalated"] += 1
    return counts


def requeue_stale_checks(*, now: datetime | None = None) -> list[int]:
    """Rounds with a check whose worker died (lease expired while running) or whose message was lost (pending
    for longer than a lease) are sent again; returns the request ids. The claim in checks_run makes a
    duplicate delivery harmless."""
    now = now or timezone.now()
    lease = _check_lease()
    stale = CheckRun.objects.filter(request__state=ApprovalRequest.State.CHECKING).filter(
        Q(status=CheckRun.Status.RUNNING, lease_until__lt=now)
        | Q(status=CheckRun.Status.PENDING, request__submitted_at__lt=now - lease)
    )
    rounds = list(stale.values_list("request_id", "round").distinct().order_by("request_id")[:1000])
    if rounds:
        from approvals.tasks import run_checks

        for request_id, round_number in rounds:
            run_checks.delay(request_id, round_number)
    return [request_id for request_id, _ in rounds]


def expire_grants(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    expired = 0
    for grant in (
        ToolGrant.objects.filter(status=ToolGrant.Status.APPROVED, expires_at__lt=now)
        .select_related("agent", "tool")
        .iterator()
    ):
        with transaction.atomic(), acting_as(_system()):
            if (
                ToolGrant.objects.filter(pk=grant.pk, status=ToolGrant.Status.APPROVED, expires_at__lt=now).update(
                    status=ToolGrant.Status.EXPIRED
                )
                == 1
            ):
                grant.status = ToolGrant.Status.EXPIRED
                scoring.grant_rescore(grant)
                scoring.agent_rescore(grant.agent)
                audit_record(action="catalog.grant.expired", target=grant, changes={"expires_at": grant.expires_at})
                notifications.notify_team(
                    grant.agent.owner,
                    event="grant-expired",
                    subject_line=f"Grant expired: {grant}",
                    body=f"The grant {grant} expired on {grant.expires_at:%Y-%m-%d}.",
                    dedupe=f"grant-expired:{grant.pk}:{grant.expires_at:%Y%m%d}",
                )
                expired += 1
    return expired


def open_recertifications(*, now: datetime | None = None) -> int:
    """Approvals nearing their end get a recertification request, once. Only a subject's latest approval does: an
    earlier one was superseded by it (a re-review, a recertification, an approved autonomy change), and is
    answered by the scan rather than marked on every approval."""
    now = now or timezone.now()
    opened = 0
    later_approval = ApprovalRequest.objects.filter(
        Q(decided_at__gt=OuterRef("decided_at")) | Q(decided_at=OuterRef("decided_at"), pk__gt=OuterRef("pk")),
        subject_key=OuterRef("subject_key"),
        state=ApprovalRequest.State.APPROVED,
    )
    due = (
        ApprovalRequest.objects.filter(
            state=ApprovalRequest.State.APPROVED,
            recertification_opened=False,
            approval_expires_at__lt=now + RECERTIFICATION_WINDOW,
        )
        .exclude(kind=ApprovalRequest.Kind.AGENT_ONBOARDING)
        .exclude(Exists(later_approval))
    )
    for approved in due.iterator():
        with transaction.atomic():
            if (
                ApprovalRequest.objects.filter(pk=approved.pk, recertification_opened=False).update(
                    recertification_opened=True
                )
                != 1
            ):
                continue
            # A recertification reviews the subject as it is (an approved autonomy change is written by now).
            subject = replace(subject_of(approved), proposed={})
            if subject.grant is not None and subject.grant.status != ToolGrant.Status.APPROVED:
                continue
            try:
                with transaction.atomic(), acting_as(_system()):
                    _submit_locked(
                        approved.requester,
                        ApprovalRequest.Kind.RECERTIFICATION,
                        subject,
                        _owning_team_id(subject),
                        f"Recertification of #{approved.pk}, which ends {approved.approval_expires_at:%Y-%m-%d}.",
                        False,
                        approved,
                    )
                opened += 1
            except IntegrityError:
                continue
    return opened


def expire_stale_requests(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    stale = ApprovalRequest.objects.filter(
        state__in=[ApprovalRequest.State.IN_REVIEW, ApprovalRequest.State.CHANGES_REQUESTED],
        submitted_at__lt=now - REQUEST_MAX_AGE,
    )
    count = 0
    for request in stale.iterator():
        with transaction.atomic(), acting_as(_system()):
            locked = _locked(request.pk)
            if locked.state not in (ApprovalRequest.State.IN_REVIEW, ApprovalRequest.State.CHANGES_REQUESTED):
                continue
            before = _finish(locked, ApprovalRequest.State.EXPIRED)
            audit_record(
                action="approvals.request.expired",
                target=locked,
                changes={"state": {"before": before, "after": "expired"}},
            )
            notifications.notify_requester(locked, "expired")
            count += 1
    return count
