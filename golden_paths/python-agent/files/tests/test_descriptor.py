from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from {{ package }}.descriptor import (
    DEFAULT_DESCRIPTOR_PATH,
    AgentDescriptor,
    DescriptorError,
    load_descriptor,
)


def test_it_reads_the_agent_descriptor(descriptor: AgentDescriptor) -> None:
    document = yaml.safe_load(DEFAULT_DESCRIPTOR_PATH.read_text(encoding="utf-8"))
    assert document["kind"] == "Component"
    assert document["spec"]["type"] == "ai-agent"
    assert document["spec"]["lifecycle"] == "experimental"
    assert descriptor.name == document["metadata"]["name"]
    assert descriptor.owner == document["spec"]["owner"]
    assert 1 <= descriptor.autonomy_level <= 5
    assert descriptor.human_in_loop in ("per_action", "none")
    assert descriptor.models
    assert descriptor.entity_ref == f"component:default/{descriptor.name}"
    assert descriptor.data_class in ("public", "internal", "confidential", "restricted")
    assert descriptor.environments


def test_it_lists_consumed_apis_as_requested_tools(descriptor: AgentDescriptor) -> None:
    document = yaml.safe_load(DEFAULT_DESCRIPTOR_PATH.read_text(encoding="utf-8"))
    consumed = document["spec"]["consumesApis"]
    assert all(ref.startswith("api:") for ref in consumed)
    assert descriptor.granted_tools == tuple(sorted(ref.removeprefix("api:") for ref in consumed))


def test_it_rejects_a_descriptor_without_the_portal_annotations(tmp_path: Path) -> None:
    broken = tmp_path / "catalog-info.yaml"
    broken.write_text(
        "kind: Component\nmetadata: {name: x, annotations: {}}\nspec: {owner: team}\n",
        encoding="utf-8",
    )
    with pytest.raises(DescriptorError, match="human-in-loop"):
        load_descriptor(broken)
