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
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

EXAMPLES_PER_OPERATION = 3
# The whole run (both tokens) stays under ~3 minutes on 2 cores: past this budget each remaining operation still
# gets one case (so none goes untested) and no more. On an idle machine it finishes well inside it.
BUDGET_SECONDS = 130
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
    from approvals import submitting
    from catalog import services as catalog
    from portal.roles import PLATFORM_ADMIN
    from scaffolder.models import GoldenPathTemplate
    from scaffolder.registering import templates_register_builtin

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
    request = submitting.request_submit(actor=admin, kind="tool_onboarding", tool=tool)
    catalog.model_upsert(data={"name": "claude", "provider": "Anthropic"}, actor=admin)
    templates_register_builtin()
    template = GoldenPathTemplate.objects.order_by("name").first()
    assert template is not None
    # Path parameters naming these rows, so each detail and action also runs on an object that exists.
    existing = {
        "/api/v1/agents/": {"name": agent.name},
        "/api/v1/tools/": {"name": tool.name},
        "/api/v1/teams/": {"name": "payments"},
        "/api/v1/models/": {"name": "claude"},
        "/api/v1/grants/": {"id": grant.pk},
        "/api/v1/approvals/requests/": {"id": request.pk},
        "/api/v1/approvals/policies/": {"tier": "medium"},
        "/api/v1/scaffolder/templates/": {"name": template.name},
    }
    return {"admin": admin, "reader": reader, "existing": existing}


def _existing_path_parameters(operation: Any, existing: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if "{" not in operation.path:
        return None
    for prefix, parameters in existing.items():
        if operation.path.startswith(prefix):
            return parameters
    return None


def _run_operation(
    operation: Any,
    base_url: str,
    headers: dict[str, str],
    failures: list[str],
    deadline: float,
    path_parameters: dict[str, Any] | None = None,
    mode: GenerationMode = GenerationMode.POSITIVE,
) -> int:
    """Run one operation's cases; returns how many requests were sent."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        # Past the budget each operation still gets its first case: nothing goes untested, the rest is capped.
        if calls and time.monotonic() > deadline:
            return
        calls.append(1)
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    calls: list[int] = []
    try:
        run()
    except Unsatisfiable:
        # Negative mode only: an operation whose every input is valid (a free-text path parameter and nothing else)
        # has no invalid cases to send. Its positive cases ran; nothing is skipped.
        assert mode is GenerationMode.NEGATIVE, operation.label
    except (Exception, BaseExceptionGroup) as error:  # each operation's failures are collected, all reported
        failures.append(f"{operation.label}: {error}"[:3000])
    return len(calls)


def test_every_operation_answers_as_its_schema_says_with_admin_and_read_only_tokens(
    live_server: Any, seeded: dict[str, Any], token_client: Callable[..., Any]
) -> None:
    from portal.tokens import token_issue

    identities = {
        "admin": (seeded["admin"], ["read", "write", "review", "admin"]),
        "read-only": (seeded["reader"], ["read"]),
    }

    def fresh_token(name: str) -> dict[str, str]:
        # One per operation: a generated `POST /tokens/{id}/revoke/` may revoke the token it is sent with.
        user, scopes = identities[name]
        return {
            "Authorization": f"Bearer {token_issue(issued_by=user, name='fuzz', scopes=scopes, expires_in_days=1).secret}"
        }

    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    # Deletions last, so the other operations still find the seeded rows.
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()), key=lambda op: op.method.lower() == "delete"
    )
    assert len(operations) > 40
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS
    failures: list[str] = []
    sent = 0
    # Valid input with both tokens, then invalid input (wrong types, missing fields, bad parameters) as the admin,
    # who gets furthest into the code: it must answer 4xx, never 5xx.
    passes = [
        ("admin", GenerationMode.POSITIVE),
        ("read-only", GenerationMode.POSITIVE),
        ("admin", GenerationMode.NEGATIVE),
    ]
    for name, mode in passes:
        for operation in operations:
            if operation.label in EXCLUDED:
                continue
            sent += _run_operation(operation, live_server.url, fresh_token(name), failures, deadline, mode=mode)
            existing = _existing_path_parameters(operation, seeded["existing"])
            if existing is not None:
                headers = fresh_token(name)
                sent += _run_operation(operation, live_server.url, headers, failures, deadline, existing, mode)
            failures[:] = [f if f.startswith("[") else f"[{name}, {mode.value}] {f}" for f in failures]
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(operations)} operations, {sent} requests in {elapsed:.0f} s")
    assert not failures, f"{len(failures)} operation(s) failed:\n\n" + "\n\n".join(failures)
