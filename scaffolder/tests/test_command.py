"""`manage.py scaffold`: render to a folder, publish and register, update, list and register golden paths."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Agent
from scaffolder.models import GoldenPathTemplate, ScaffoldRun
from scaffolder.tests.conftest import FIXTURES, git_log

pytestmark = pytest.mark.django_db

AGENT_SETS = [
    "name=cli-helper",
    "description=Made on the command line",
    "owner=sre-team",
    "agent_type=coding",
    "autonomy_level=3",
    "human_approval=false",
    "tools=github,pagerduty",
]


def scaffold(*arguments: str) -> str:
    out = io.StringIO()
    call_command("scaffold", *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def sets(pairs: list[str]) -> list[str]:
    return [item for pair in pairs for item in ("--set", pair)]


def test_it_renders_a_golden_path_into_a_new_git_repository(builtin: dict[str, Any], tmp_path: Path) -> None:
    output = tmp_path / "cli-helper"

    printed = scaffold(
        "python-agent", *sets(AGENT_SETS), "--output", str(output), "--author", "Ci Bot <ci@example.com>"
    )

    assert "Rendered 26 files from python-agent 1.1.0" in printed
    answers = (output / ".portal-answers.yml").read_text()
    assert "autonomy_level: 3" in answers
    assert "human_approval: false" in answers
    assert "- pagerduty" in answers
    assert git_log(output, "log", "--format=%an <%ae>").strip() == "Ci Bot <ci@example.com>"
    assert git_log(output, "status", "--porcelain") == ""
    assert not ScaffoldRun.objects.exists()  # a plain render touches nothing in the portal


def test_it_renders_from_a_template_folder(db: None, tmp_path: Path) -> None:
    output = tmp_path / "svc"
    scaffold(
        str(FIXTURES / "updatable-v1"), "--set", "name=svc", "--set", "owner=me", "--output", str(output), "--no-git"
    )
    assert (output / "old_name.py").is_file()
    assert not (output / ".git").exists()


def test_it_reports_bad_values_field_by_field(builtin: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(CommandError) as caught:
        scaffold("python-agent", "--set", "name=Bad Name", "--set", "autonomy_level=9", "--output", str(tmp_path / "x"))
    message = str(caught.value)
    assert "name: Must match the pattern" in message
    assert "autonomy_level: Must be at most 5." in message
    assert "description: This field is required." in message
    with pytest.raises(CommandError, match="autonomy_level: must be a whole number"):
        scaffold("python-agent", "--set", "autonomy_level=lots", "--output", str(tmp_path / "x"))


def test_it_never_writes_into_a_non_empty_folder(builtin: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine\n")
    with pytest.raises(CommandError, match="exists and is not empty"):
        scaffold("python-agent", *sets(AGENT_SETS), "--output", str(tmp_path / "taken"))
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine\n"


def test_it_publishes_and_registers_through_the_portal(world: dict[str, Any], make_bare: Any, tmp_path: Path) -> None:
    remote = make_bare("cli-helper")
    output = tmp_path / "local-copy"

    printed = scaffold(
        "python-agent", *sets(AGENT_SETS), "--publish", "--register", "--user", "alice", "--output", str(output)
    )

    run = ScaffoldRun.objects.get()
    assert run.state == ScaffoldRun.State.SUCCEEDED
    assert f"Run #{run.pk} succeeded." in printed
    assert "[succeeded] Request grants for the tools it consumes" in printed
    assert Agent.objects.get(name="cli-helper").status == Agent.Status.ONBOARDING
    assert git_log(remote, "rev-parse", "main").strip() == run.commit_sha
    assert git_log(output, "rev-parse", "HEAD").strip() == run.commit_sha  # the same commit, locally


def test_it_can_publish_without_registering(world: dict[str, Any], make_bare: Any) -> None:
    make_bare("cli-helper")
    scaffold("python-agent", *sets(AGENT_SETS), "--publish", "--user", "alice")
    run = ScaffoldRun.objects.get()
    assert {step.step_id: step.status for step in run.steps.all()}["register"] == "skipped"
    assert not Agent.objects.exists()


def test_it_needs_a_user_to_act_through_the_portal(builtin: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="--user is required"):
        scaffold("python-agent", *sets(AGENT_SETS), "--register")


def test_it_updates_a_generated_repository(db: None, tmp_path: Path, settings: Any) -> None:
    shipped = tmp_path / "golden_paths"
    shutil.copytree(FIXTURES / "updatable-v1", shipped / "updatable")
    settings.SCAFFOLDER_GOLDEN_PATHS_DIR = str(shipped)
    assert "updatable 1.0.0: created" in scaffold("--register-builtin")
    repo = tmp_path / "svc"
    scaffold("updatable", "--set", "name=svc", "--set", "owner=team", "--output", str(repo))
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("License: MIT", "License: proprietary"))
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "ours"], check=True, env=_git_env())

    shutil.rmtree(shipped / "updatable")
    shutil.copytree(FIXTURES / "updatable-v2", shipped / "updatable")
    assert "updatable 2.0.0: created" in scaffold("--register-builtin")
    assert "(versions: 1.0.0, 2.0.0)" in scaffold("--list")

    with pytest.raises(CommandError) as caught:
        scaffold("--update", str(repo))
    assert "nothing was committed and the merge is in progress" in str(caught.value)
    assert "conflict (marked inline): README.md" in str(caught.value)
    assert "<<<<<<< HEAD" in readme.read_text()
    assert git_log(repo, "log", "-1", "--format=%s").strip() == "ours"  # conflict markers are never committed
    assert "UU README.md" in git_log(repo, "status", "--porcelain")
    assert (repo / "new_name.py").is_file()
    with pytest.raises(CommandError, match="unresolved conflicts"):
        scaffold("--update", str(repo))
    assert GoldenPathTemplate.objects.get(name="updatable").versions.count() == 2


def test_update_needs_a_registered_template(db: None, tmp_path: Path) -> None:
    repo = tmp_path / "svc"
    scaffold(str(FIXTURES / "updatable-v1"), "--set", "name=svc", "--set", "owner=me", "--output", str(repo))
    with pytest.raises(CommandError, match="not registered here"):
        scaffold("--update", str(repo))


def _git_env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Team",
        "GIT_AUTHOR_EMAIL": "team@example.com",
        "GIT_COMMITTER_NAME": "Team",
        "GIT_COMMITTER_EMAIL": "team@example.com",
    }


def test_migrate_registers_the_builtin_golden_paths(db: None, tmp_path: Path, settings: Any) -> None:
    settings.SCAFFOLDER_REGISTER_BUILTIN_ON_MIGRATE = True  # the default outside tests
    assert not GoldenPathTemplate.objects.exists()

    call_command("migrate", verbosity=0, stdout=io.StringIO())

    assert set(GoldenPathTemplate.objects.values_list("name", flat=True)) == {"python-agent", "mcp-server"}
    printed = scaffold(
        "python-agent",
        *sets(["name=fresh", "owner=x", "description=d", "agent_type=sre"]),
        "--output",
        str(tmp_path / "fresh"),
    )
    assert "Rendered" in printed


def test_register_builtin_picks_up_a_changed_folder_as_a_new_version(db: None, tmp_path: Path, settings: Any) -> None:
    shipped = tmp_path / "golden_paths"
    shutil.copytree(FIXTURES / "updatable-v1", shipped / "updatable")
    settings.SCAFFOLDER_GOLDEN_PATHS_DIR = str(shipped)
    assert "updatable 1.0.0: created" in scaffold("--register-builtin")
    readme = shipped / "updatable" / "files" / "README.md"
    readme.write_text(readme.read_text() + "\nOne more line.\n")  # changed without bumping the version

    printed = scaffold("--register-builtin")

    template = GoldenPathTemplate.objects.get(name="updatable")
    assert template.latest is not None
    assert template.version == template.latest.version
    assert template.version.startswith("1.0.0+") and f"updatable {template.version}: created" in printed
    assert template.latest.content_hash.startswith(template.version.removeprefix("1.0.0+"))
    assert "updatable 1.0.0: unchanged" not in printed
    assert f"updatable {template.version}: unchanged" in scaffold("--register-builtin")
