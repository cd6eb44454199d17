"""The facts a reviewer judges, and their fingerprint: a sha256 of their canonical JSON.

Pure: plain values in, a flat dict of facts and a hex digest out. An approval request stores the facts it was
submitted on and their fingerprint; a decision names the fingerprint its reviewer saw. Any change of these facts
changes the fingerprint, so a decision made on other facts than the current ones is refused.

The facts are flat (one key per fact, one `capability:<name>` key per capability with its hints), so two sets are
compared key by key to tell reviewers what changed between rounds. Keys are prefixed by what they describe
(`tool_...`, `agent_...`), so a grant's facts hold its tool's and agent's without a clash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

CAPABILITY_PREFIX = "capability:"
HINTS = ("read_only", "destructive", "idempotent", "open_world")
HINT_LABELS = {
    "read_only": "read-only",
    "destructive": "destructive",
    "idempotent": "idempotent",
    "open_world": "open-world",
}


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(facts: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(dict(facts)).encode()).hexdigest()


def hints_text(capability: Mapping[str, Any]) -> str:
    """A capability's hints in words, every hint named (an unstated hint is the worst case, so it is shown)."""

    def word(value: Any) -> str:
        return "yes" if value is True else "no" if value is False else "unstated"

    return ", ".join(f"{HINT_LABELS[hint]} {word(capability.get(hint))}" for hint in HINTS)


def tool_fact_set(
    *,
    name: str,
    owner: str,
    kind: str,
    version: str,
    endpoint_url: str,
    transport: str,
    data_class: str | None,
    reach: str | None,
    credential_scope: str | None,
    annotations_trusted: bool,
    capabilities: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """What a reviewer judges of a tool: who owns it, what it is, where it runs, what data it touches, how far it
    reaches, with which credentials, what it can do (each capability with its hints) and whether the hints are
    attested. Descriptions, tags and links are not judged: editing them does not reopen review."""
    facts: dict[str, Any] = {
        "tool": name,
        "tool_owner": owner,
        "tool_kind": kind,
        "tool_version": version,
        "tool_endpoint": endpoint_url,
        "tool_transport": transport,
        "tool_data_class": data_class,
        "reach": reach,
        "credential_scope": credential_scope,
        "annotations_trusted": annotations_trusted,
    }
    for capability in sorted(capabilities, key=lambda cap: str(cap["name"])):
        facts[CAPABILITY_PREFIX + str(capability["name"])] = hints_text(capability)
    return facts


def agent_fact_set(
    *,
    name: str,
    owner: str,
    agent_type: str,
    autonomy_level: int | None,
    human_in_loop: str | None,
    data_class: str | None,
    runtime: str,
    models: Iterable[str],
    environments: Iterable[str],
    a2a_endpoint: str,
    version: str,
) -> dict[str, Any]:
    """What a reviewer judges of an agent: owner, type, autonomy, human oversight, data, where it runs, which
    models it uses and in which environments."""
    return {
        "agent": name,
        "agent_owner": owner,
        "agent_type": agent_type,
        "autonomy_level": autonomy_level,
        "human_in_loop": human_in_loop,
        "agent_data_class": data_class,
        "runtime": runtime,
        "models": sorted(set(models)),
        "environments": sorted({str(env) for env in environments}),
        "a2a_endpoint": a2a_endpoint,
        "agent_version": version,
    }


def grant_fact_set(
    *, environment: str, capability_names: Iterable[str], credential_scope: str | None
) -> dict[str, Any]:
    return {
        "environment": environment,
        "capability_names": sorted(set(capability_names)),
        "grant_credential_scope": credential_scope,
    }


def grant_fingerprint(grant_facts: Mapping[str, Any], *, tool_fingerprint: str, agent_fingerprint: str) -> str:
    """A grant's fingerprint: its own fields plus its tool's and agent's fingerprints, so a change of either end
    changes it."""
    return digest({**grant_facts, "tool_fingerprint": tool_fingerprint, "agent_fingerprint": agent_fingerprint})


def capability_names(facts: Mapping[str, Any]) -> set[str]:
    """The capability names in a tool's (or grant's) facts."""
    return {key.removeprefix(CAPABILITY_PREFIX) for key in facts if key.startswith(CAPABILITY_PREFIX)}


def facts_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each fact whose value differs, as {fact: {before, after}}; an added or removed fact has None on one side."""
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }
