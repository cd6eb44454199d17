"""The agent's own Backstage descriptor (catalog-info.yaml) is its source of truth.

Name, owner, model, autonomy level, human-in-the-loop mode, data class, environments and the
requested tools are read from it, so what the catalog shows is what the agent does. Whether a
tool may be called is not: the portal answers that at call time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DESCRIPTOR_ENV = "AGENT_DESCRIPTOR"
DEFAULT_DESCRIPTOR_PATH = Path(__file__).resolve().parent.parent / "catalog-info.yaml"
ANNOTATION_PREFIX = "agentportal.io/"
HUMAN_IN_LOOP_MODES = ("per_action", "none")


class DescriptorError(ValueError):
    """catalog-info.yaml is missing a field or has an invalid value."""


@dataclass(frozen=True)
class AgentDescriptor:
    name: str
    description: str
    owner: str
    agent_type: str
    autonomy_level: int
    human_in_loop: str
    models: tuple[str, ...]
    granted_tools: tuple[str, ...]
    data_class: str = "internal"
    environments: tuple[str, ...] = ("production",)

    @property
    def entity_ref(self) -> str:
        """Stable catalog identity, used as gen_ai.agent.id."""
        return f"component:default/{self.name}"

    @property
    def model(self) -> str:
        return self.models[0]

    @property
    def requires_approval(self) -> bool:
        return self.human_in_loop != "none"


def descriptor_path() -> Path:
    return Path(os.environ.get(DESCRIPTOR_ENV) or DEFAULT_DESCRIPTOR_PATH)


def load_descriptor(path: Path | None = None) -> AgentDescriptor:
    document = yaml.safe_load((path or descriptor_path()).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("kind") != "Component":
        raise DescriptorError("catalog-info.yaml must describe a single Component")
    metadata = _mapping(document, "metadata")
    spec = _mapping(document, "spec")
    annotations = _mapping(metadata, "annotations")

    human_in_loop = _annotation(annotations, "human-in-loop")
    if human_in_loop not in HUMAN_IN_LOOP_MODES:
        raise DescriptorError(f"agentportal.io/human-in-loop must be one of {HUMAN_IN_LOOP_MODES}")
    try:
        autonomy_level = int(_annotation(annotations, "autonomy-level"))
    except ValueError as error:
        raise DescriptorError("agentportal.io/autonomy-level must be an integer") from error
    if not 1 <= autonomy_level <= 5:
        raise DescriptorError("agentportal.io/autonomy-level must be between 1 and 5")
    models = tuple(model.strip() for model in _annotation(annotations, "models").split(","))
    if not all(models):
        raise DescriptorError("agentportal.io/models must list at least one model")

    return AgentDescriptor(
        name=str(metadata.get("name", "")),
        description=str(metadata.get("description", "")),
        owner=str(spec.get("owner", "")),
        agent_type=_annotation(annotations, "agent-type"),
        autonomy_level=autonomy_level,
        human_in_loop=human_in_loop,
        models=models,
        granted_tools=tuple(sorted(_tool_name(ref) for ref in spec.get("consumesApis") or [])),
        data_class=_annotation(annotations, "data-class"),
        environments=tuple(
            name.strip()
            for name in _annotation(annotations, "environments").split(",")
            if name.strip()
        )
        or ("production",),
    )


def _mapping(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    if not isinstance(value, dict):
        raise DescriptorError(f"catalog-info.yaml: {key} must be a mapping")
    return value


def _annotation(annotations: dict[str, Any], name: str) -> str:
    value = annotations.get(ANNOTATION_PREFIX + name)
    if value is None:
        raise DescriptorError(f"catalog-info.yaml: annotation {ANNOTATION_PREFIX}{name} is missing")
    return str(value)


def _tool_name(entity_ref: str) -> str:
    """'api:github' or 'api:default/github' -> 'github'."""
    kind, _, name = str(entity_ref).partition(":")
    if kind != "api" or not name:
        raise DescriptorError(f"consumesApis entries must be 'api:<name>', got {entity_ref!r}")
    return name.rsplit("/", 1)[-1]
