"""Who may do what through the API: one table, role x endpoint x method -> status, covering every endpoint of
/api/v1/ (and the public MCP registry). Read it as an access-control policy; a change to it is a change of policy.

Columns (principals):
  anon   no credentials
  eng    an engineer (session), member of no team
  mnt    a maintainer of team `payments` (session), which owns everything below; the requester of the requests
  rev    a security reviewer (session)
  adm    a platform admin (session)
  t:r    the platform admin's token with scope read
  t:rw   ... with scopes read, write: no admin powers without the admin scope
  t:adm  ... with scope admin (which includes every other scope)

Cells are the HTTP status expected. Where an allowed caller meets a state that refuses (a request not waiting for
that action), the cell is that state's 409 or 400: the point is that the caller got past the access check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

TINY_TEMPLATE = Path(__file__).resolve().parents[1] / "scaffolder" / "tests" / "fixtures" / "tiny-service"
PRINCIPALS = ("anon", "eng", "mnt", "rev", "adm", "t:r", "t:rw", "t:adm")

A, T = "/api/v1", "/api/v1/approvals"
# fmt: off
MATRIX: list[tuple[str, str, tuple[int, ...]]] = [
    #  method    path                                         anon eng  mnt  rev  adm  t:r  t:rw t:adm
    ("GET",    f"{A}/me/",                                    (401, 200, 200, 200, 200, 200, 200, 200)),
    # catalog: everyone signed in reads; the owning team's maintainers (or platform admins) write
    ("GET",    f"{A}/agents/",                                (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/agents/",                                (401, 403, 201, 403, 201, 403, 403, 201)),
    ("GET",    f"{A}/agents/helper/",                         (401, 200, 200, 200, 200, 200, 200, 200)),
    ("PUT",    f"{A}/agents/helper/",                         (401, 403, 200, 403, 200, 403, 403, 200)),
    ("PATCH",  f"{A}/agents/helper/",                         (401, 403, 200, 403, 200, 403, 403, 200)),
    ("DELETE", f"{A}/agents/spare/",                          (401, 403, 204, 403, 204, 403, 403, 204)),
    ("GET",    f"{A}/tools/",                                 (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/tools/",                                 (401, 403, 201, 403, 201, 403, 403, 201)),
    ("GET",    f"{A}/tools/stock-api/",                       (401, 200, 200, 200, 200, 200, 200, 200)),
    ("PUT",    f"{A}/tools/stock-api/",                       (401, 403, 200, 403, 200, 403, 403, 200)),
    ("PATCH",  f"{A}/tools/stock-api/",                       (401, 403, 200, 403, 200, 403, 403, 200)),
    ("DELETE", f"{A}/tools/spare-tool/",                      (401, 403, 204, 403, 204, 403, 403, 204)),
    ("GET",    f"{A}/grants/",                                (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/grants/",                                (401, 403, 201, 403, 201, 403, 403, 201)),
    ("GET",    f"{A}/grants/{{grant}}/",                      (401, 200, 200, 200, 200, 200, 200, 200)),
    # shared vocabulary: platform admins only, and by token only with the admin scope (issue 13 item 4)
    ("GET",    f"{A}/models/",                                (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/models/",                                (401, 403, 403, 403, 201, 403, 403, 201)),
    ("GET",    f"{A}/models/claude/",                         (401, 200, 200, 200, 200, 200, 200, 200)),
    ("PUT",    f"{A}/models/claude/",                         (401, 403, 403, 403, 200, 403, 403, 200)),
    ("PATCH",  f"{A}/models/claude/",                         (401, 403, 403, 403, 200, 403, 403, 200)),
    ("GET",    f"{A}/teams/",                                 (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/teams/",                                 (401, 403, 403, 403, 201, 403, 403, 201)),
    ("GET",    f"{A}/teams/payments/",                        (401, 200, 200, 200, 200, 200, 200, 200)),
    # locations: for the default owner's maintainers (400: the private target is then refused) or admins
    ("GET",    f"{A}/locations/",                             (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/locations/",                             (401, 403, 400, 403, 400, 403, 403, 400)),
    ("GET",    f"{A}/locations/{{location}}/",                (401, 200, 200, 200, 200, 200, 200, 200)),
    ("DELETE", f"{A}/locations/{{location}}/",                (401, 403, 204, 403, 204, 403, 403, 204)),
    ("POST",   f"{A}/locations/{{location}}/sync/",           (401, 403, 202, 403, 202, 403, 403, 202)),
    # import writes what the caller may write (its report says which entity was refused); export is a read
    ("POST",   f"{A}/import/",                                (401, 400, 200, 400, 200, 403, 400, 200)),
    ("GET",    f"{A}/export/backstage",                       (401, 200, 200, 200, 200, 200, 200, 200)),
    # a large import's run: its author (mnt here) and platform admins (by token only with the admin scope)
    ("GET",    f"{A}/imports/{{import_run}}/",                (401, 404, 200, 404, 200, 404, 404, 200)),
    # approvals
    ("GET",    f"{T}/policies/",                              (401, 200, 200, 200, 200, 200, 200, 200)),
    ("GET",    f"{T}/policies/medium/",                       (401, 200, 200, 200, 200, 200, 200, 200)),
    ("PATCH",  f"{T}/policies/medium/",                       (401, 403, 403, 403, 200, 403, 403, 200)),
    ("GET",    f"{T}/requests/",                              (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{T}/requests/",                              (401, 403, 201, 403, 201, 403, 403, 201)),
    ("GET",    f"{T}/requests/{{review}}/",                   (401, 200, 200, 200, 200, 200, 200, 200)),
    # deciding needs the stage's role (and the review scope by token); nobody decides their own request
    ("POST",   f"{T}/requests/{{review}}/decide/",            (401, 403, 403, 200, 403, 403, 403, 403)),
    # attesting: another maintainer; the requester is the only one here, so a reviewer or admin (issue 13 item 3)
    ("POST",   f"{T}/requests/{{attest}}/attest/",            (401, 403, 403, 200, 200, 403, 403, 200)),
    ("POST",   f"{T}/requests/{{review}}/attest/",            (401, 409, 409, 409, 409, 403, 403, 409)),
    ("POST",   f"{T}/requests/{{review}}/withdraw/",          (401, 403, 200, 403, 200, 403, 403, 200)),
    ("POST",   f"{T}/requests/{{review}}/resubmit/",          (401, 403, 409, 403, 409, 403, 403, 409)),
    # API tokens: your own only; the admin scope is issued only by a platform admin acting with it
    ("GET",    f"{A}/tokens/",                                (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/tokens/",                                (401, 201, 201, 201, 201, 403, 201, 201)),
    ("POST",   f"{A}/tokens/#admin-scope",                    (401, 400, 400, 400, 201, 403, 400, 201)),
    ("GET",    f"{A}/tokens/{{token}}/",                      (401, 404, 200, 404, 404, 404, 404, 404)),
    ("POST",   f"{A}/tokens/{{token}}/revoke/",               (401, 404, 200, 404, 404, 403, 404, 404)),
    # scaffolder: previews are reads; runs are yours (404 for a run that is not)
    ("GET",    f"{A}/scaffolder/templates/",                  (401, 200, 200, 200, 200, 200, 200, 200)),
    ("GET",    f"{A}/scaffolder/templates/{{template}}/",     (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/scaffolder/templates/{{template}}/preview/", (401, 400, 400, 400, 400, 400, 400, 400)),
    ("GET",    f"{A}/scaffolder/runs/",                       (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/scaffolder/runs/",                       (401, 400, 400, 400, 400, 403, 400, 400)),
    ("GET",    f"{A}/scaffolder/runs/999999/",                (401, 404, 404, 404, 404, 404, 404, 404)),
    ("POST",   f"{A}/scaffolder/runs/999999/retry/",          (401, 404, 404, 404, 404, 403, 404, 404)),
    # search reads like the lists; the call-time check is for machines: any read token, no session
    ("GET",    f"{A}/search/?q=helper",                       (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/grants/check/",                          (401, 401, 401, 401, 401, 200, 200, 200)),
    ("GET",    f"{A}/grants/policy?format=agentgateway",      (401, 200, 200, 200, 200, 200, 200, 200)),
    # hints attestation: security reviewers outside the owning team (409 here: the hash sent is not current)
    ("POST",   f"{T}/requests/{{review}}/hints-attestation/", (401, 403, 403, 409, 403, 403, 403, 403)),
    # runtime: usage and evidence are reads; evaluations come from the agent's owners (or CI with their token)
    ("GET",    f"{A}/agents/helper/usage/",                   (401, 200, 200, 200, 200, 200, 200, 200)),
    ("GET",    f"{A}/agents/helper/autonomy-evidence/",       (401, 200, 200, 200, 200, 200, 200, 200)),
    ("GET",    f"{A}/agents/helper/evaluations/",             (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/agents/helper/evaluations/",             (401, 403, 201, 403, 201, 403, 403, 201)),
    ("GET",    f"{A}/findings/",                              (401, 200, 200, 200, 200, 200, 200, 200)),
    ("GET",    f"{A}/findings/{{finding}}/",                  (401, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",   f"{A}/findings/{{finding}}/",                  (401, 403, 200, 200, 200, 403, 403, 200)),
    # the MCP registry is public by default (MCP_REGISTRY_PUBLIC); it shows approved servers only (404 before)
    ("GET",    "/v0.1/servers",                               (200, 200, 200, 200, 200, 200, 200, 200)),
    ("GET",    "/v0.1/servers/{server}/versions",             (404, 404, 404, 404, 404, 404, 404, 404)),
    ("GET",    "/v0.1/servers/{server}/versions/latest",      (404, 404, 404, 404, 404, 404, 404, 404)),
]
# fmt: on

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", f"{A}/agents/"): {"name": "new-agent", "owner": "payments"},
    ("PUT", f"{A}/agents/helper/"): {"name": "helper", "owner": "payments", "description": "Helps more."},
    ("PATCH", f"{A}/agents/helper/"): {"title": "Helper", "skills": [{"id": "triage"}]},
    ("POST", f"{A}/tools/"): {"name": "new-tool", "owner": "payments", "kind": "cli"},
    ("PUT", f"{A}/tools/stock-api/"): {"name": "stock-api", "owner": "payments", "kind": "cli"},
    ("PATCH", f"{A}/tools/stock-api/"): {"title": "Stock"},
    ("POST", f"{A}/grants/"): {"agent": "helper", "tool": "other-tool", "environment": "staging"},
    ("POST", f"{A}/models/"): {"name": "new-model", "provider": "Acme"},
    ("PUT", f"{A}/models/claude/"): {"provider": "Anthropic"},
    ("PATCH", f"{A}/models/claude/"): {"residency": "EU"},
    ("POST", f"{A}/teams/"): {"name": "new-team"},
    ("POST", f"{A}/locations/"): {"kind": "url", "target": "https://127.0.0.1/x.yaml", "default_owner": "payments"},
    ("POST", f"{A}/import/"): {
        "content": "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: imported-agent}\n"
        "spec: {type: ai-agent, lifecycle: production, owner: group:payments}\n",
        "dry_run": True,
    },
    ("PATCH", f"{T}/policies/medium/"): {"validity_days": 300},
    ("POST", f"{T}/requests/"): {"kind": "agent_onboarding", "agent": "onboarding-agent"},
    ("POST", f"{T}/requests/{{review}}/decide/"): {
        "outcome": "approve",
        "comment": "Fine.",
        "facts_fingerprint": "{fingerprint}",
    },
    ("POST", f"{A}/tokens/"): {"name": "ci", "scopes": ["read"]},
    ("POST", f"{A}/tokens/#admin-scope"): {"name": "ci", "scopes": ["admin"]},
    ("POST", f"{A}/scaffolder/templates/{{template}}/preview/"): {"values": {"name": 5}},
    ("POST", f"{A}/scaffolder/runs/"): {"template": "no-such-template", "values": {}},
    ("POST", f"{A}/grants/check/"): {"agent": "helper", "tool": "stock-api", "capability": "get_quote"},
    ("POST", f"{T}/requests/{{review}}/hints-attestation/"): {"capabilities_hash": "0" * 64},
    ("POST", f"{A}/agents/helper/evaluations/"): {"suite": "eval-gate", "passed": True, "score": 0.9, "threshold": 0.8},
    ("POST", f"{A}/findings/{{finding}}/"): {"action": "accept", "reason": "A known test caller."},
}


EXTRA_ROWS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("DELETE", f"{A}/agents/spare/"): (("agent", "spare"),),
    ("DELETE", f"{A}/tools/spare-tool/"): (("tool", "spare-tool"),),
    ("POST", f"{A}/grants/"): (("tool", "other-tool"),),
    ("POST", f"{T}/requests/"): (("agent", "onboarding-agent"),),
}


@pytest.fixture
def world(
    request: pytest.FixtureRequest, make_user: Callable[..., Any], make_team: Callable[..., Any], settings: Any
) -> dict[str, Any]:
    from approvals.models import ApprovalRequest
    from approvals.policies import policy_snapshot
    from approvals.services import OWNER_ATTESTATION_ROLE
    from approvals.submitting import request_submit
    from catalog import services as catalog
    from catalog.models import Location
    from portal.roles import PLATFORM_ADMIN, SECURITY_REVIEWER
    from portal.tokens import token_issue
    from scaffolder.manifest import load_golden_path
    from scaffolder.registering import template_register

    settings.MCP_REGISTRY_PUBLIC = True
    users = {
        "eng": make_user("erin"),
        "mnt": make_user("mia"),
        "rev": make_user("rita", roles=[SECURITY_REVIEWER]),
        "adm": make_user("ada", roles=[PLATFORM_ADMIN]),
    }
    make_team("payments", maintainers=[users["mnt"]])
    mnt = users["mnt"]
    catalog.agent_create(actor=mnt, data={"name": "helper", "owner": "payments", "description": "Helps."})
    catalog.tool_create(actor=mnt, data={"name": "stock-api", "owner": "payments", "kind": "mcp_server", "registry_name": "io.example/stock-api"})  # fmt: skip
    # Rows that consume a row of their own (deleted, granted, submitted) get it only when they run.
    for kind, name in EXTRA_ROWS.get(
        (request.node.callspec.params.get("method"), request.node.callspec.params.get("path")), ()
    ):
        create = catalog.agent_create if kind == "agent" else catalog.tool_create
        create(
            actor=mnt,
            data={"name": name, "owner": "payments", "description": "Spare.", "kind": "cli"}
            if kind == "tool"
            else {"name": name, "owner": "payments"},
        )
    catalog.model_upsert(data={"name": "claude", "provider": "Anthropic"}, actor=users["adm"])
    grant, _ = catalog.grant_request(actor=mnt, agent=catalog.Agent.objects.get(name="helper"), tool=catalog.Tool.objects.get(name="stock-api"))  # fmt: skip
    review = request_submit(actor=mnt, kind="tool_onboarding", tool=catalog.Tool.objects.get(name="stock-api"))
    attest = request_submit(actor=mnt, kind="agent_onboarding", agent=catalog.Agent.objects.get(name="helper"))
    # As the checks would leave them: one at its security review, one waiting for the owner's attestation.
    ApprovalRequest.objects.filter(pk=review.pk).update(
        state="in_review", tier="medium", policy_snapshot=policy_snapshot("medium"), current_role="security-reviewer"
    )
    low = policy_snapshot("low")
    ApprovalRequest.objects.filter(pk=attest.pk).update(
        state="in_review",
        tier="low",
        current_role=OWNER_ATTESTATION_ROLE,
        policy_snapshot={
            **low,
            "stages": [{"name": "Owner attestation", "role": OWNER_ATTESTATION_ROLE, "sla_hours": 72}],
        },
    )
    location = Location.objects.create(kind="url", target="https://example.com/c.yaml", default_owner=catalog.Team.objects.get(name="payments"), created_by=mnt)  # fmt: skip
    token = token_issue(issued_by=mnt, name="mine", scopes=["read"], expires_in_days=1).token
    # The smallest golden path the scaffolder's own tests use (registering every built-in one costs a second).
    template = template_register(golden_path=load_golden_path(TINY_TEMPLATE), builtin_folder=TINY_TEMPLATE.name)
    template = template.version.template
    from django.utils import timezone

    from catalog.models import ImportRun
    from runtime.findings import DeniedCalls, findings_from_denied_checks
    from runtime.models import Finding

    now = timezone.now()
    findings_from_denied_checks(
        [DeniedCalls("helper", "stock-api", "no_grant", "get_quote", "production", "", 1, now, now)]
    )
    finding = Finding.objects.get(agent_key="helper").pk
    ids = {
        "fingerprint": ApprovalRequest.objects.get(pk=review.pk).facts_fingerprint,
        "finding": finding,
        "grant": grant.pk,
        "review": review.pk,
        "attest": attest.pk,
        "location": location.pk,
        "import_run": ImportRun.objects.create(created_by=mnt).pk,
        "token": token.pk,
        "template": template.name,
        "server": "io.example%2Fstock-api",
    }
    return {"users": users, "ids": ids}


def _client(principal: str, world: dict[str, Any]) -> APIClient:
    from portal.tokens import token_issue

    client = APIClient()
    if principal == "anon":
        return client
    if principal.startswith("t:"):
        scopes = {"t:r": ["read"], "t:rw": ["read", "write"], "t:adm": ["admin"]}[principal]
        issued = token_issue(issued_by=world["users"]["adm"], name="matrix", scopes=scopes, expires_in_days=1)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        return client
    client.force_authenticate(user=None)
    client.force_login(world["users"][principal])
    return client


def _call(world: dict[str, Any], method: str, path: str, principal: str) -> tuple[int, str]:
    body = BODIES.get((method, path))
    if body is not None and "{fingerprint}" in _json(body):  # the facts the reviewer saw, read when the world is made
        body = {key: world["ids"]["fingerprint"] if value == "{fingerprint}" else value for key, value in body.items()}
    url = path.split("#")[0].format(**world["ids"])
    response = _client(principal, world).generic(method, url, data=_json(body), content_type="application/json")
    if response.status_code >= 400 and url.startswith("/api/"):
        assert response.json()["error"]["status"] == response.status_code, response.content
    return response.status_code, f"{principal} {method} {url} -> {response.status_code}: {response.content[:300]!r}"


# Reads change nothing: one world per row serves every principal. A write gets a fresh world per principal.
READS = [
    pytest.param(method, path, statuses, id=f"{method} {path}") for method, path, statuses in MATRIX if method == "GET"
]
WRITES = [
    pytest.param(method, path, principal, expected, id=f"{principal} {method} {path}")
    for method, path, statuses in MATRIX
    if method != "GET"
    for principal, expected in zip(PRINCIPALS, statuses, strict=True)
]


@pytest.mark.parametrize(("method", "path", "statuses"), READS)
def test_who_may_read(world: dict[str, Any], method: str, path: str, statuses: tuple[int, ...]) -> None:
    answers = [_call(world, method, path, principal) for principal in PRINCIPALS]
    wrong = [detail for (status, detail), expected in zip(answers, statuses, strict=True) if status != expected]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("method", "path", "principal", "expected"), WRITES)
def test_who_may_write(world: dict[str, Any], method: str, path: str, principal: str, expected: int) -> None:
    status, detail = _call(world, method, path, principal)
    assert status == expected, detail


def _json(body: dict[str, Any] | None) -> str:
    import json

    return json.dumps(body) if body is not None else ""


def test_the_matrix_covers_every_endpoint_of_the_schema() -> None:
    """A new endpoint must get its row: the matrix lists every path and method of /api/schema/."""
    import re

    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }

    def covered(method: str, documented_path: str) -> bool:
        pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(documented_path)) + "$")
        return any(m == method and pattern.match(path.split("#")[0].split("?")[0]) for m, path, _ in MATRIX)

    assert len(documented) > 40
    missing = sorted((method, path) for method, path in documented if not covered(method, path))
    assert not missing, f"rows missing from MATRIX: {missing}"
