"""Updating a generated repository by three-way merge: renamed, deleted, changed and conflicting files."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from scaffolder.git import Identity, commit_all, git_environment, run_git
from scaffolder.golden_path import GoldenPath
from scaffolder.manifest import load_golden_path
from scaffolder.rendering import render_golden_path, write_rendered
from scaffolder.tests.conftest import FIXTURES
from scaffolder.updating import UpdateError, read_answers, update_repository

TEAM = Identity(name="Team Member", email="team@example.com")
VALUES = {"name": "svc", "owner": "team", "greeting": "hi"}


@pytest.fixture
def v1() -> GoldenPath:
    return load_golden_path(FIXTURES / "updatable-v1")


@pytest.fixture
def v2() -> GoldenPath:
    return load_golden_path(FIXTURES / "updatable-v2")


@pytest.fixture
def repo(tmp_path: Path, v1: GoldenPath) -> Path:
    folder = tmp_path / "svc"
    write_rendered(render_golden_path(v1, VALUES), folder)
    commit_all(folder, identity=TEAM, when=datetime(2025, 1, 1, tzinfo=UTC), message="Scaffold svc")
    return folder


def edit(repo: Path, path: str, old: str, new: str) -> None:
    target = repo / path
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new, 1))


def team_commit(repo: Path, message: str = "team edits") -> None:
    run_git(["commit", "--quiet", "-am", message], cwd=repo, env=git_environment(identity=TEAM))


def git(repo: Path, *arguments: str) -> str:
    return subprocess.run(["git", *arguments], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_it_applies_template_changes_and_keeps_the_teams_edits(repo: Path, v1: GoldenPath, v2: GoldenPath) -> None:
    edit(repo, "config.yaml", "replicas: 1", "replicas: 3")  # the team's own change, far from the template's
    edit(repo, "old_name.py", "return 1\n", "return 2\n")  # in a file the template renames
    team_commit(repo)
    head = git(repo, "rev-parse", "HEAD").strip()

    result = update_repository(repo, old=v1, new=v2, identity=TEAM)

    assert result.conflicts == []
    assert result.commit is not None
    assert git(repo, "rev-parse", "HEAD~1").strip() == head  # one new commit on the team's branch
    assert git(repo, "status", "--porcelain") == ""
    config = (repo / "config.yaml").read_text()
    assert "replicas: 3" in config  # kept
    assert "log_level: warning" in config  # from the template
    assert "port: 8080" in config  # a new parameter, from its default
    # Renamed by the template, edited by the team: the edit follows the rename.
    assert not (repo / "old_name.py").exists()
    renamed = (repo / "new_name.py").read_text()
    assert 'return "hi, world"' in renamed
    assert "return 2\n" in renamed
    assert not (repo / "obsolete.txt").exists()  # deleted by the template, untouched by the team
    assert (repo / "added.txt").read_text() == "Added in version 2.\n"
    assert read_answers(repo).version == "2.0.0"
    assert read_answers(repo).answers["port"] == 8080
    assert "old_name.py => new_name.py" in git(repo, "show", "--stat", "-M", "HEAD")
    assert "Update from the updatable golden path 1.0.0 -> 2.0.0" in git(repo, "log", "-1", "--format=%B")


def test_it_stops_with_the_merge_in_progress_and_commits_no_conflict(
    repo: Path, v1: GoldenPath, v2: GoldenPath
) -> None:
    edit(repo, "README.md", "License: MIT", "License: proprietary")
    team_commit(repo)
    head = git(repo, "rev-parse", "HEAD")

    result = update_repository(repo, old=v1, new=v2, identity=TEAM)

    assert result.stopped and not result.up_to_date
    assert result.conflicts == ["README.md"]
    assert result.commit is None
    assert git(repo, "rev-parse", "HEAD") == head  # nothing committed
    readme = (repo / "README.md").read_text()
    assert "<<<<<<< HEAD\nLicense: proprietary\n=======\nLicense: Apache-2.0\n>>>>>>> " in readme
    assert "Intro line, improved." in readme  # the non-conflicting hunk merged cleanly
    assert "UU README.md" in git(repo, "status", "--porcelain")
    with pytest.raises(UpdateError, match="unresolved conflicts"):
        update_repository(repo, old=v1, new=v2, identity=TEAM)  # a second run does not pile on

    (repo / "README.md").write_text(readme.split("<<<<<<<")[0] + "License: proprietary\n")
    run_git(["add", "README.md"], cwd=repo, env=git_environment(identity=TEAM))
    run_git(["commit", "--no-edit", "--quiet"], cwd=repo, env=git_environment(identity=TEAM))
    assert "Update from the updatable golden path 1.0.0 -> 2.0.0" in git(repo, "log", "-1", "--format=%B")
    assert "Conflicts resolved by hand:\n  README.md" in git(repo, "log", "-1", "--format=%B")
    assert read_answers(repo).version == "2.0.0"


def test_it_keeps_a_file_the_template_deleted_but_the_team_changed(repo: Path, v1: GoldenPath, v2: GoldenPath) -> None:
    edit(repo, "legacy.cfg", "setting = 1", "setting = 2")
    team_commit(repo)

    result = update_repository(repo, old=v1, new=v2, identity=TEAM)

    assert result.kept_deleted == ["legacy.cfg"]
    assert (repo / "legacy.cfg").read_text() == "setting = 2\n"
    assert not (repo / "obsolete.txt").exists()


def test_it_does_nothing_when_already_up_to_date(repo: Path, v1: GoldenPath) -> None:
    head = git(repo, "rev-parse", "HEAD")
    result = update_repository(repo, old=v1, new=v1, identity=TEAM)
    assert result.up_to_date
    assert git(repo, "rev-parse", "HEAD") == head


def test_it_refuses_a_repository_with_uncommitted_changes(repo: Path, v1: GoldenPath, v2: GoldenPath) -> None:
    (repo / "scratch.txt").write_text("work in progress\n")
    with pytest.raises(UpdateError, match="uncommitted changes"):
        update_repository(repo, old=v1, new=v2, identity=TEAM)


def test_it_refuses_a_repository_from_another_template_version(repo: Path, v2: GoldenPath) -> None:
    with pytest.raises(UpdateError, match=r"was generated from updatable 1\.0\.0"):
        update_repository(repo, old=v2, new=v2, identity=TEAM)


def test_it_refuses_a_folder_without_answers(tmp_path: Path, v1: GoldenPath, v2: GoldenPath) -> None:
    with pytest.raises(UpdateError, match="only repositories generated by the portal"):
        update_repository(tmp_path, old=v1, new=v2, identity=TEAM)


def test_it_asks_for_values_a_new_version_requires(repo: Path, v1: GoldenPath, tmp_path: Path) -> None:
    import shutil

    stricter = tmp_path / "v3"
    shutil.copytree(FIXTURES / "updatable-v2", stricter)
    manifest = yaml.safe_load((stricter / "template.yaml").read_text())
    manifest["version"] = "3.0.0"
    manifest["parameters"]["properties"]["region"] = {"type": "string", "enum": ["eu", "us"]}
    manifest["parameters"]["required"].append("region")
    (stricter / "template.yaml").write_text(yaml.safe_dump(manifest))
    v3 = load_golden_path(stricter)

    with pytest.raises(UpdateError, match="region: This field is required"):
        update_repository(repo, old=v1, new=v3, identity=TEAM)
    result = update_repository(repo, old=v1, new=v3, identity=TEAM, extra_values={"region": "eu"})
    assert read_answers(repo).answers["region"] == "eu"
    assert result.to_version == "3.0.0"
