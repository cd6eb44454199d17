"""POST /api/v1/grants/check/: allowed only for an approved, unexpired grant that covers the call, over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from agents_api.grant_index import GrantIndex, generation_bump, generation_read
from catalog import services as catalog
from catalog.models import ToolGrant
from catalog.signals import grant_check_denied
from runtime.denials import denied_checks

pytestmark = pytest.mark.django_db

CHECK = "/api/v1/grants/check/"


def check(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post(CHECK, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def gateway(token_client: Callable[..., Any], make_user: Callable[..., Any]) -> Any:
    return token_client(make_user("gateway"), scopes=["read"])


def test_it_allows_a_granted_capability(gateway: Any, make_grant: Callable[..., Any]) -> None:
    grant = make_grant(capabilities=["get_file", "list_issues"])
    answer = check(gateway, agent="pr-reviewer", tool="github-mcp", capability="list_issues")
    assert answer["allowed"] is True
    assert answer["verdict"] == "allowed"
    assert answer["grant"] == grant.pk
    assert answer["expires_at"] == grant.expires_at.isoformat()
    assert "covers 'list_issues'" in answer["reason"]


def test_it_denies_a_capability_the_grant_does_not_cover(gateway: Any, make_grant: Callable[..., Any]) -> None:
    grant = make_grant(capabilities=["get_file"])
    answer = check(gateway, agent="pr-reviewer", tool="github-mcp", capability="create_issue")
    assert answer["allowed"] is False
    assert answer["verdict"] == "capability_not_granted"
    assert answer["grant"] == grant.pk
    assert "it covers get_file" in answer["reason"]


def test_it_denies_an_expired_grant_by_its_date_before_any_job_marks_it(
    gateway: Any, make_grant: Callable[..., Any]
) -> None:
    grant = make_grant(expires_in=timedelta(hours=1))
    assert check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")["allowed"] is True
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        answer = check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")
    assert answer["allowed"] is False
    assert answer["verdict"] == "grant_expired"
    assert answer["grant"] == grant.pk


def test_it_denies_a_revoked_grant_at_once(gateway: Any, make_grant: Callable[..., Any]) -> None:
    grant = make_grant()
    assert check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")["allowed"] is True
    catalog.grant_set_status(grant=grant, status="revoked", reason="incident")
    answer = check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")
    assert (answer["allowed"], answer["verdict"]) == (False, "grant_revoked")


def test_it_denies_other_environments_pending_grants_and_empty_grants(
    gateway: Any, make_grant: Callable[..., Any]
) -> None:
    make_grant(environment="staging")
    answer = check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")
    assert answer["verdict"] == "environment_not_granted"
    assert "staging" in answer["reason"]
    assert check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file", environment="staging")[
        "allowed"
    ]
    make_grant(environment="dev", status="requested")
    answer = check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file", environment="dev")
    assert answer["verdict"] == "grant_pending"
    # Approval names what a grant covers; one stored with no names (its tool had none when approved) covers nothing.
    empty = make_grant(environment="qa", capabilities=[])
    ToolGrant.objects.filter(pk=empty.pk).update(capability_names=[])
    generation_bump()
    answer = check(gateway, agent="pr-reviewer", tool="github-mcp", environment="qa")
    assert (answer["allowed"], answer["verdict"]) == (False, "capability_not_granted")


def test_enforce_answers_a_denial_with_403_for_ext_authz_callers(gateway: Any, make_grant: Callable[..., Any]) -> None:
    make_grant(capabilities=["get_file"])
    url = f"{CHECK}?enforce=true"
    allowed = gateway.post(url, {"agent": "pr-reviewer", "tool": "github-mcp", "capability": "get_file"}, format="json")
    assert allowed.status_code == 200
    denied = gateway.post(url, {"agent": "pr-reviewer", "tool": "github-mcp", "capability": "x"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["verdict"] == "capability_not_granted"


def test_it_answers_unknown_agents_and_tools_with_a_denial(gateway: Any, world: dict[str, Any]) -> None:
    answer = check(gateway, agent="ghost", tool="github-mcp", capability="get_file")
    assert answer == {
        "allowed": False,
        "reason": "The catalog has no agent 'ghost'; use catalog names.",
        "verdict": "no_grant",
        "grant": None,
        "expires_at": None,
    }
    answer = check(gateway, agent="PR-Reviewer", tool="nope", capability="get_file")
    assert answer["reason"] == "The catalog has no tool 'nope'; use catalog names."
    assert check(gateway, agent="pr-reviewer", tool="github-mcp")["verdict"] == "no_grant"


def test_it_sees_a_grant_made_after_a_denial_was_answered(gateway: Any, make_grant: Callable[..., Any]) -> None:
    assert check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")["allowed"] is False
    make_grant()
    assert check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")["allowed"] is True


def test_it_refuses_a_bad_body_naming_the_field(gateway: Any) -> None:
    response = gateway.post(CHECK, {"tool": "github-mcp", "environment": ""}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error["fields"]) == {"agent", "environment"}
    assert error["message"] == "Invalid input: agent, environment."


def test_it_needs_a_token_with_the_read_scope(
    token_client: Callable[..., Any], make_user: Callable[..., Any], api_client: Any
) -> None:
    writer = token_client(make_user("writer"), scopes=["write"])
    response = writer.post(CHECK, {"agent": "a", "tool": "b"}, format="json")
    assert response.status_code == 403
    assert "'read' scope" in response.json()["error"]["message"]
    assert api_client.post(CHECK, {"agent": "a", "tool": "b"}, format="json").status_code in (401, 403)


def test_it_signals_every_denial_for_runtime_findings(gateway: Any, make_grant: Callable[..., Any]) -> None:
    make_grant(capabilities=["get_file"])
    heard: list[dict[str, Any]] = []

    def listener(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("the findings store is down")

    grant_check_denied.connect(listener)
    grant_check_denied.connect(broken)
    try:
        check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")
        answer = check(gateway, agent="pr-reviewer", tool="github-mcp", capability="create_issue", environment="PROD")
    finally:
        grant_check_denied.disconnect(listener)
        grant_check_denied.disconnect(broken)
    assert answer["verdict"] == "environment_not_granted"  # a failing listener never breaks the answer
    assert len(heard) == 1
    assert heard[0]["agent"] == "pr-reviewer"
    assert heard[0]["capability"] == "create_issue"
    assert heard[0]["environment"] == "prod"
    assert heard[0]["verdict"] == "environment_not_granted"


def test_the_generation_changes_with_every_grant_change_and_the_index_follows(
    make_grant: Callable[..., Any], world: dict[str, Any]
) -> None:
    index = GrantIndex(max_age=0)  # reads the generation at every lookup
    before = generation_read()
    assert index.lookup("pr-reviewer", "github-mcp").grants == ()
    grant = make_grant()
    assert generation_read() != before
    (facts,) = index.lookup("pr-reviewer", "github-mcp").grants
    assert (facts.grant_id, facts.status, facts.capability_names) == (grant.pk, "approved", ("get_file",))
    moved = generation_read()
    catalog.agent_delete(actor=None, agent=world["agent"])
    assert generation_read() != moved
    assert index.lookup("pr-reviewer", "github-mcp").missing == "agent"


def test_the_check_is_in_the_openapi_schema_which_validates_without_warnings(tmp_path: Any) -> None:
    import yaml
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    operation = schema["paths"]["/api/v1/grants/check/"]["post"]
    assert operation["summary"] == "May this agent call this tool now?"
    assert operation["security"] == [{"apiToken": []}]
    assert "/api/v1/grants/policy" in schema["paths"]


def test_the_checks_token_memory_still_refuses_a_token_once_expired(
    token_client: Callable[..., Any], make_user: Callable[..., Any], world: dict[str, Any]
) -> None:
    client = token_client(make_user("gateway"), scopes=["read"])
    body = {"agent": "pr-reviewer", "tool": "github-mcp"}
    assert client.post(CHECK, body, format="json").status_code == 200  # verified, then remembered
    with time_machine.travel(client.token.expires_at + timedelta(seconds=1)):
        response = client.post(CHECK, body, format="json")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_a_change_made_elsewhere_is_seen_once_the_index_is_older_than_its_max_age(
    make_grant: Callable[..., Any],
) -> None:
    index = GrantIndex(max_age=1.0)
    grant = make_grant()
    assert index.lookup("pr-reviewer", "github-mcp").grants[0].status == "approved"
    # Another process revokes: the row and the generation change; this process's receivers do not run.
    ToolGrant.objects.filter(pk=grant.pk).update(status="revoked")
    generation_bump()
    assert index.lookup("pr-reviewer", "github-mcp").grants[0].status == "approved"  # the map as last read
    time.sleep(1.0)
    assert index.lookup("pr-reviewer", "github-mcp").grants[0].status == "revoked"


def test_a_denied_check_opens_a_runtime_finding_and_repeats_count_on_it(
    gateway: Any, make_grant: Callable[..., Any]
) -> None:
    from runtime.models import Finding

    make_grant(capabilities=["get_file"])
    for _ in range(2):
        check(gateway, agent="pr-reviewer", tool="github-mcp", capability="delete_repo")
    check(gateway, agent="pr-reviewer", tool="github-mcp", capability="get_file")  # allowed: no finding
    denied_checks.flush()  # repeats are counted per process and written together (runtime.denials)
    finding = Finding.objects.get()
    assert (finding.kind, finding.count) == ("capability_not_granted", 2)


def test_the_view_answers_every_kind_of_request_and_counts_verdicts(
    token_client: Callable[..., Any], make_user: Callable[..., Any], make_grant: Callable[..., Any]
) -> None:
    """The DRF view (what the front in agents_api/front.py hands over; test_front.py compares the two)."""
    from prometheus_client import REGISTRY
    from rest_framework.test import APIClient

    make_grant(capabilities=["get_file"])
    gateway, anonymous = token_client(make_user("gateway"), scopes=["read"]), APIClient()
    bodies = [
        ({"agent": "pr-reviewer", "tool": "github-mcp", "capability": "get_file"}, ""),
        ({"agent": "pr-reviewer", "tool": "github-mcp", "capability": "delete_repo"}, "?enforce=true"),
        ({"agent": "", "tool": "github-mcp"}, ""),
        ({"agent": "pr-reviewer", "tool": "ghost-mcp"}, "?nonsense=1"),
    ]
    allowed_before = REGISTRY.get_sample_value("portal_grant_checks_total", {"verdict": "allowed"}) or 0
    responses = [gateway.post(CHECK + query, body, format="json") for body, query in bodies]
    responses.append(anonymous.post(CHECK, bodies[0][0], format="json"))

    assert [response.status_code for response in responses] == [200, 403, 400, 200, 401]
    assert responses[2].json()["error"]["fields"].keys() == {"agent"}
    assert REGISTRY.get_sample_value("portal_grant_checks_total", {"verdict": "allowed"}) == allowed_before + 1
    assert responses[0]["X-Content-Type-Options"] == "nosniff" and "Set-Cookie" not in responses[0]
    assert anonymous.get(CHECK).status_code == 401


class _SlowGeneration:
    """generation_read standing in for a slow round trip: counts the reads, each waits until let go."""

    def __init__(self) -> None:
        self.reads = 0
        self.value = 1
        self.started = threading.Event()
        self.go = threading.Event()
        self.go.set()

    def __call__(self) -> int:
        self.reads += 1
        value = self.value
        self.started.set()
        assert self.go.wait(5)
        return value

    def read_held(self, index: GrantIndex) -> threading.Thread:
        """A thread of `index` reading the generation, held in the round trip until `go` is set."""
        self.go.clear()
        self.started.clear()
        reader = threading.Thread(target=index._current_pairs)
        reader.start()
        assert self.started.wait(5)
        return reader


@pytest.fixture
def slow_generation(monkeypatch: pytest.MonkeyPatch) -> _SlowGeneration:
    from agents_api import grant_index as module

    slow = _SlowGeneration()
    monkeypatch.setattr(module, "generation_read", slow)
    return slow


def test_one_thread_reads_a_stale_generation_while_the_others_answer_from_the_map(
    slow_generation: _SlowGeneration,
) -> None:
    index = GrantIndex(max_age=0.01)
    first = index._current_pairs()
    time.sleep(0.02)  # stale now
    reader = slow_generation.read_held(index)
    answered = []
    others = [threading.Thread(target=lambda: answered.append(index._current_pairs())) for _ in range(7)]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(5)
    assert len(answered) == 7 and all(pairs is first for pairs in answered)  # did not wait for the read
    slow_generation.go.set()
    reader.join(5)
    assert slow_generation.reads == 2


def test_a_read_that_began_before_a_change_in_this_process_does_not_count_as_current(
    slow_generation: _SlowGeneration,
) -> None:
    index = GrantIndex(max_age=60)
    index._current_pairs()
    index.expire()
    reader = slow_generation.read_held(index)  # under way, with the old generation
    index.expire()  # this process changes a grant now
    slow_generation.value = 2
    slow_generation.go.set()
    reader.join(5)
    assert index._generation == 1  # what the read under way saw
    index._current_pairs()  # the next check reads again
    assert (slow_generation.reads, index._generation) == (3, 2)
    index._current_pairs()
    assert slow_generation.reads == 3  # current now, for max_age
