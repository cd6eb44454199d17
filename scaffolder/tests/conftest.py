"""Scaffolder fixtures: the built-in golden paths registered, a team with a maintainer, catalog tools, a work
folder and a folder of real bare git repositories to publish into."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalog import services as catalog

AGENT_VALUES: dict[str, Any] = {
    "name": "incident-helper",
    "description": "Triages incidents and suggests fixes.",
    "owner": "sre-team",
    "agent_type": "sre",
    "tools": ["github", "pagerduty"],
}
MCP_VALUES: dict[str, Any] = {"name": "items-api", "description": "Look up work items.", "owner": "sre-team"}
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def scaffolder_dirs(settings: Any, tmp_path: Path) -> dict[str, Path]:
    remotes = tmp_path / "remotes"
    remotes.mkdir()
    settings.SCAFFOLDER_WORK_DIR = str(tmp_path / "work")
    settings.SCAFFOLDER_GIT_REMOTE_BASE = str(remotes)
    settings.SCAFFOLDER_GITHUB_TOKEN = ""
    settings.SCAFFOLDER_GITLAB_TOKEN = ""
    return {"work": tmp_path / "work", "remotes": remotes}


@pytest.fixture
def make_bare(scaffolder_dirs: dict[str, Path]) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        path = scaffolder_dirs["remotes"] / f"{name}.git"
        subprocess.run(["git", "init", "--bare", "--quiet", "--initial-branch=main", str(path)], check=True)
        return path

    return make


@pytest.fixture
def alice(make_user: Callable[..., Any]) -> Any:
    return make_user("alice", first_name="Alice", last_name="Liddell")


@pytest.fixture
def team(make_team: Callable[..., Any], alice: Any) -> Any:
    return make_team("sre-team", maintainers=[alice])


@pytest.fixture
def tools(team: Any, alice: Any) -> list[Any]:
    return [
        catalog.tool_create(actor=alice, data={"name": name, "owner": "sre-team", "kind": "cli", "description": "x"})
        for name in ("github", "pagerduty")
    ]


@pytest.fixture
def builtin(db: None) -> dict[str, Any]:
    from scaffolder.models import GoldenPathTemplate
    from scaffolder.registering import templates_register_builtin

    templates_register_builtin()
    return {template.name: template for template in GoldenPathTemplate.objects.all()}


@pytest.fixture
def world(builtin: dict[str, Any], team: Any, tools: list[Any], alice: Any) -> dict[str, Any]:
    return {"templates": builtin, "team": team, "tools": tools, "alice": alice}


def git_log(repo: Path, *arguments: str) -> str:
    result = subprocess.run(["git", *arguments], cwd=repo, capture_output=True, text=True, check=True)
    return result.stdout
