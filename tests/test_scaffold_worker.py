"""A scaffold run executed by a real Celery worker process reaches succeeded: the worker reads the golden path
from the database (not from its own disk), renders, commits, registers the agent and files its requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from catalog import services as catalog
from catalog.models import Agent
from scaffolder import registering, services
from scaffolder.models import GoldenPathTemplate, ScaffoldRun

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_runs_a_scaffold_to_success(
    celery_worker_process: Any,
    make_user: Callable[..., Any],
    make_team: Callable[..., Any],
    settings: Any,
    tmp_path: Any,
) -> None:
    settings.SCAFFOLDER_WORK_DIR = str(tmp_path / "web-work")
    alice = make_user("alice", first_name="Alice", last_name="Liddell")
    make_team("sre-team", maintainers=[alice])
    catalog.tool_create(actor=alice, data={"name": "github", "owner": "sre-team", "kind": "cli", "description": "x"})
    registering.templates_register_builtin()

    run = services.run_start(
        actor=alice,
        template=GoldenPathTemplate.objects.get(name="python-agent"),
        values={
            "name": "worker-agent",
            "description": "Scaffolded by a real worker.",
            "owner": "sre-team",
            "agent_type": "coding",
            "tools": ["github"],
        },
    )  # enqueued when the transaction (autocommit here) commits

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            break
        time.sleep(0.25)
    else:
        pytest.fail(f"the run is still {run.state} after 120 s:\n" + celery_worker_process.log())

    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error + "\n" + celery_worker_process.log()
    assert [step.attempts for step in run.steps.exclude(status="skipped")] == [1, 1, 1, 1]
    assert run.archive
    agent = Agent.objects.get(name="worker-agent")
    assert run.agent == agent
    assert agent.status == Agent.Status.ONBOARDING
    assert len(run.approval_request_ids) == 2
    assert not (tmp_path / "web-work" / "runs").exists()  # the steps ran in the worker process
