"""The facts reviewers judge and their fingerprint: pure functions, no database."""

from __future__ import annotations

from typing import Any

from catalog import fingerprints

CAPS = [
    {"name": "list_issues", "read_only": True, "destructive": False, "idempotent": True, "open_world": False},
    {"name": "delete_repo", "read_only": False, "destructive": True, "idempotent": None, "open_world": True},
]


def tool(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "github-mcp",
        "owner": "platform",
        "kind": "mcp_server",
        "version": "1.4.0",
        "endpoint_url": "https://mcp.example.com/mcp",
        "transport": "streamable_http",
        "data_class": "internal",
        "reach": "allowlisted",
        "credential_scope": "delegated",
        "annotations_trusted": True,
        "capabilities": CAPS,
    }
    return fingerprints.tool_fact_set(**(values | overrides))


def agent(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "pr-reviewer",
        "owner": "platform",
        "agent_type": "code_review",
        "autonomy_level": 2,
        "human_in_loop": "per_action",
        "data_class": "internal",
        "runtime": "ci",
        "models": ["claude", "gpt"],
        "environments": ["production", "staging"],
        "a2a_endpoint": "",
        "version": "1.0.0",
    }
    return fingerprints.agent_fact_set(**(values | overrides))


def test_it_gives_the_same_fingerprint_to_the_same_facts_whatever_their_order() -> None:
    assert fingerprints.digest(tool()) == fingerprints.digest(tool(capabilities=list(reversed(CAPS))))
    assert fingerprints.digest(agent()) == fingerprints.digest(
        agent(models=["gpt", "claude", "gpt"], environments=["staging", "production"])
    )
    assert len(fingerprints.digest(tool())) == 64
    # The canonical spelling: sorted keys, no spaces, UTF-8 as is.
    assert fingerprints.canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_every_fact_a_reviewer_judges_changes_the_fingerprint() -> None:
    base = fingerprints.digest(tool())
    changed = [
        tool(owner="payments"),
        tool(kind="http_api"),
        tool(version="1.5.0"),
        tool(endpoint_url="https://other.example.com/mcp"),
        tool(data_class="confidential"),
        tool(reach="open_world"),
        tool(credential_scope="admin"),
        tool(annotations_trusted=False),
        tool(capabilities=[*CAPS, {"name": "merge_pr"}]),
        tool(capabilities=[CAPS[0], {**CAPS[1], "open_world": False}]),  # a hint
        tool(capabilities=[CAPS[0], {**CAPS[1], "idempotent": False}]),  # unstated -> stated
    ]
    assert all(fingerprints.digest(facts) != base for facts in changed)
    assert len({fingerprints.digest(facts) for facts in changed}) == len(changed)
    base_agent = fingerprints.digest(agent())
    for overrides in ({"autonomy_level": 4}, {"human_in_loop": None}, {"models": ["claude"]}, {"owner": "x"}):
        assert fingerprints.digest(agent(**overrides)) != base_agent, overrides


def test_a_capability_is_one_fact_with_its_hints_in_words() -> None:
    facts = tool()
    assert facts["capability:delete_repo"] == "read-only no, destructive yes, idempotent unstated, open-world yes"
    assert fingerprints.capability_names(facts) == {"list_issues", "delete_repo"}
    assert "description" not in facts  # descriptions, tags and links are not judged


def test_a_grants_fingerprint_moves_with_either_end() -> None:
    own = fingerprints.grant_fact_set(environment="production", capability_names=["b", "a"], credential_scope=None)
    assert own["capability_names"] == ["a", "b"]
    base = fingerprints.grant_fingerprint(own, tool_fingerprint="t1", agent_fingerprint="a1")
    assert base == fingerprints.grant_fingerprint(dict(own), tool_fingerprint="t1", agent_fingerprint="a1")
    assert base != fingerprints.grant_fingerprint(own, tool_fingerprint="t2", agent_fingerprint="a1")
    assert base != fingerprints.grant_fingerprint(own, tool_fingerprint="t1", agent_fingerprint="a2")
    staging = fingerprints.grant_fact_set(environment="staging", capability_names=["a", "b"], credential_scope=None)
    assert base != fingerprints.grant_fingerprint(staging, tool_fingerprint="t1", agent_fingerprint="a1")


def test_it_diffs_facts_key_by_key() -> None:
    before, after = tool(), tool(owner="payments", capabilities=[CAPS[0]])
    assert fingerprints.facts_diff(before, after) == {
        "capability:delete_repo": {"before": before["capability:delete_repo"], "after": None},
        "tool_owner": {"before": "platform", "after": "payments"},
    }
    assert fingerprints.facts_diff(before, tool()) == {}
