"""Schemathesis against a live server: every operation of /api/schema/, with an admin token and a read-only token.

Fails on any 5xx and on any response the schema does not describe (status code, content type, headers, body).
Bounded for CI: a few generated cases per operation and token, and a wall-clock budget for the whole run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

EXAMPLES_PER_OPERATION = 6
# The whole run (both tokens) must stay under ~3 minutes on 2 cores; it takes about a minute.
BUDGET_SECONDS = 150
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Nothing is excluded. Every operation of the schema runs with both tokens.
EXCLUDED: dict[str, str] = {}


@schemathesis.deserializer("application/yaml", "text/yaml")
def yaml_stream(ctx: Any, response: Any) -> Any:
    """The Backstage export is a multi-document stream, as its schema says: the list of its documents."""
    return [document for document in yaml.safe_load_all(response.content) if document is not None]


@pytest.fixture
def seeded(make_user: Callable[..., Any], make_team: Callable[..., Any]) -> dict[str, Any]:
    """A small catalog for the generated requests to find: a team, an agent, a tool, a grant and a request."""
    from approvals import services as approvals
    from catalog import services as catalog
    from portal.roles import PLATFORM_ADMIN

    admin = make_user("fuzz-admin", roles=[PLATFORM_ADMIN])
    reader = make_user("fuzz-reader")
    make_team("payments", maintainers=[admin])
    agent = catalog.agent_create(
        actor=admin,
        data={"name": "helper", "owner": "payments", "description": "Helps.", "skills": [{"id": "triage"}]},
    )
    tool = catalog.tool_create(
        actor=admin,
        data={"name": "stock-api", "owner": "payments", "kind": "cli", "capabilities": [{"name": "list_items"}]},
    )
    grant, _ = catalog.grant_request(actor=admin, agent=agent, tool=tool)
    approvals.request_submit(actor=admin, kind="tool_onboarding", tool=tool)
    return {"admin": admin, "reader": reader, "grant": grant}


def _run_operation(
    operation: Any, base_url: str, headers: dict[str, str], failures: list[str], deadline: float
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        if time.monotonic() > deadline:
            return
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except (Exception, BaseExceptionGroup) as error:  # each operation's failures are collected, all reported
        failures.append(f"{operation.label}: {error}"[:3000])


def test_every_operation_answers_as_its_schema_says_with_admin_and_read_only_tokens(
    live_server: Any, seeded: dict[str, Any], token_client: Callable[..., Any]
) -> None:
    from portal.tokens import token_issue

    tokens = {
        "admin": token_issue(
            issued_by=seeded["admin"], name="fuzz", scopes=["read", "write", "review", "admin"], expires_in_days=1
        ).secret,
        "read-only": token_issue(issued_by=seeded["reader"], name="fuzz", scopes=["read"], expires_in_days=1).secret,
    }
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS
    failures: list[str] = []
    for name, secret in tokens.items():
        headers = {"Authorization": f"Bearer {secret}"}
        for operation in operations:
            if operation.label in EXCLUDED:
                continue
            _run_operation(operation, live_server.url, headers, failures, deadline)
            failures[:] = [f if f.startswith("[") else f"[{name}] {f}" for f in failures]
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET_SECONDS, f"the run needed {elapsed:.0f} s; lower EXAMPLES_PER_OPERATION"
    assert not failures, f"{len(failures)} operation(s) failed:\n\n" + "\n\n".join(failures)
