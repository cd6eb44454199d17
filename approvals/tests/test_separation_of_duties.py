"""The database refuses a decision by the request's requester, reading the request itself (migration 0003's
triggers), on SQLite and PostgreSQL alike: raw SQL, past every service."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from approvals import submitting
from approvals.models import ApprovalRequest, Decision

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


def _insert_decision(request_id: int, reviewer_id: int, stage_index: int = 0) -> None:
    table = connection.ops.quote_name(Decision._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (request_id, round, stage_index, stage_name, reviewer_id, outcome, comment, "  # noqa: S608
            "facts_fingerprint, created_at) VALUES (%s, 1, %s, 'Security review', %s, 'approve', '', '', %s)",
            [request_id, stage_index, reviewer_id, connection.ops.adapt_datetimefield_value(timezone.now())],
        )


@pytest.fixture
def request_in_review(
    world: dict[str, Any], make_tool: Any, django_capture_on_commit_callbacks: Any
) -> ApprovalRequest:
    with django_capture_on_commit_callbacks(execute=True):
        request = submitting.request_submit(actor=world["owner"], kind="tool_onboarding", tool=make_tool())
    request.refresh_from_db()
    assert request.state == "in_review"
    return request


def test_a_raw_insert_of_a_decision_by_the_requester_is_refused(
    world: dict[str, Any], request_in_review: ApprovalRequest
) -> None:
    with pytest.raises(IntegrityError, match="separation of duties"), transaction.atomic():
        _insert_decision(request_in_review.pk, world["owner"].pk)
    _insert_decision(request_in_review.pk, world["reviewer"].pk)  # anyone else is accepted
    assert Decision.objects.filter(request=request_in_review).count() == 1


def test_a_decision_cannot_be_moved_onto_the_requester_or_onto_a_request_they_made(
    world: dict[str, Any], request_in_review: ApprovalRequest, make_tool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _insert_decision(request_in_review.pk, world["reviewer"].pk)
    decision = Decision.objects.get(request=request_in_review)
    with pytest.raises(IntegrityError, match="separation of duties"), transaction.atomic():
        Decision.objects.filter(pk=decision.pk).update(reviewer=world["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        theirs = submitting.request_submit(
            actor=world["reviewer"], kind="tool_onboarding", tool=make_tool("other-tool"), check_permission=False
        )
    with pytest.raises(IntegrityError, match="separation of duties"), transaction.atomic():
        Decision.objects.filter(pk=decision.pk).update(request=theirs)


def test_the_requester_cannot_be_changed_to_someone_who_decided(
    world: dict[str, Any], request_in_review: ApprovalRequest
) -> None:
    _insert_decision(request_in_review.pk, world["reviewer"].pk)
    with pytest.raises(IntegrityError, match="separation of duties"), transaction.atomic():
        ApprovalRequest.objects.filter(pk=request_in_review.pk).update(requester=world["reviewer"])
    ApprovalRequest.objects.filter(pk=request_in_review.pk).update(requester=world["admin"])
