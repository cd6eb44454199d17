from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from runtime.models import SpanRecord, ToolUsageDaily
from runtime.services import spans_prune
from runtime.tests.otlp_builders import as_json, tool_call

pytestmark = pytest.mark.django_db


@override_settings(RUNTIME_SPAN_RETENTION_DAYS=3)
def test_raw_spans_older_than_the_window_are_pruned_and_counters_stay(
    catalog_setup: Any, telemetry_token: Any, post_spans: Any
) -> None:
    secret, _ = telemetry_token()
    assert (
        post_spans(
            as_json([tool_call("billing-bot", "create_issue", server="io.github.example/github")] * 4), secret
        ).status_code
        == 200
    )
    old = list(SpanRecord.objects.values_list("pk", flat=True)[:3])
    SpanRecord.objects.filter(pk__in=old).update(received_at=timezone.now() - timedelta(days=3, minutes=1))
    assert spans_prune() == 3
    assert SpanRecord.objects.count() == 1
    assert ToolUsageDaily.objects.get().calls == 4
    assert spans_prune() == 0


def test_the_prune_task_is_on_the_beat_schedule() -> None:
    from django.conf import settings

    assert any(entry["task"] == "runtime.prune_spans" for entry in settings.CELERY_BEAT_SCHEDULE.values())
