"""Two raises of one agent's autonomy at once (PostgreSQL, two threads): one autonomy change request, never two, and
never a 500; the same level twice answers the one request, another level is a conflict naming it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from approvals.models import ApprovalRequest
from approvals.services import ApprovalConflict
from catalog import services as catalog
from catalog.models import Agent
from catalog.teams import team_create, team_set_member
from portal.context import acting_as, actor_for_user

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="threads racing need PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]
FACTS = {"description": "Bills.", "data_class": "internal", "human_in_loop": "per_action", "autonomy_level": 3}


def _raise_together(agent: Agent, user: Any, levels: tuple[int, int]) -> list[str]:
    barrier = threading.Barrier(2)
    results: list[str] = []

    def raise_to(level: int) -> None:
        try:
            barrier.wait(timeout=30)
            with acting_as(actor_for_user(user)):  # type: ignore[arg-type]
                updated = catalog.agent_update(actor=user, agent=agent, data={"autonomy_level": level})
            results.append(f"held #{updated.held_changes[0].request_id}")
        except ApprovalConflict as exc:
            results.append(f"conflict: {exc}")
        except Exception as exc:  # an IntegrityError or a deadlock would be a 500
            results.append(f"unexpected {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=raise_to, args=(level,)) for level in levels]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(results)


def test_concurrent_raises_file_one_request(make_user: Callable[..., Any]) -> None:
    from portal.celery import app

    alice = make_user("alice")
    team_set_member(team=team_create(name="payments"), user=alice, role="maintainer")
    app.conf.task_always_eager = True  # the checks run in the raising thread, after its commit
    try:
        for number in range(4):
            agent = catalog.agent_create(actor=alice, data={"name": f"bot-{number}", "owner": "payments", **FACTS})
            same_level = number % 2 == 0
            results = _raise_together(agent, alice, (5, 5) if same_level else (5, 4))

            [request] = ApprovalRequest.objects.filter(agent=agent, kind="autonomy_change")
            if same_level:
                assert results == [f"held #{request.pk}"] * 2, results
            else:
                assert results[0].startswith("conflict: Autonomy") and f"request #{request.pk}" in results[0], results
                assert results[1] == f"held #{request.pk}", results
            assert Agent.objects.get(pk=agent.pk).autonomy_level == 3
    finally:
        app.conf.task_always_eager = False
