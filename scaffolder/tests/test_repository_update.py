"""The update button: a published repository gets the template's newer version as a new branch, merged
three-way with the team's own commits; main is never touched."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client
from django.urls import reverse

from scaffolder import registering, services
from scaffolder.manifest import load_golden_path
from scaffolder.models import GoldenPathTemplate, RepositoryUpdate, ScaffoldRun
from scaffolder.tests.conftest import FIXTURES, git_log

pytestmark = pytest.mark.django_db

GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "Team",
    "GIT_AUTHOR_EMAIL": "team@example.com",
    "GIT_COMMITTER_NAME": "Team",
    "GIT_COMMITTER_EMAIL": "team@example.com",
}


def register(version_folder: str, scratch: Path) -> GoldenPathTemplate:
    """The update fixture with a publish step, registered as the built-in template "updatable"."""
    folder = scratch / "updatable"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(FIXTURES / version_folder, folder)
    manifest = yaml.safe_load((folder / "template.yaml").read_text())
    manifest["steps"].append({"id": "publish", "action": "publish", "name": "Publish the repository"})
    (folder / "template.yaml").write_text(yaml.safe_dump(manifest))
    registering.template_register(golden_path=load_golden_path(folder), builtin_folder="updatable")
    return GoldenPathTemplate.objects.get(name="updatable")


@pytest.fixture
def published(team: Any, alice: Any, make_bare: Any, tmp_path: Path) -> dict[str, Any]:
    remote = make_bare("svc")
    template = register("updatable-v1", tmp_path)
    run = services.run_start(
        actor=alice, template=template, values={"name": "svc", "owner": "sre-team"}, publisher="git", enqueue=False
    )
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    # The team works on main: one change the template also makes (a conflict), one it does not.
    clone = tmp_path / "team-clone"
    subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(clone)], check=True, env=GIT_ENV)
    readme, config = clone / "README.md", clone / "config.yaml"
    readme.write_text(readme.read_text().replace("License: MIT", "License: proprietary"))
    config.write_text(config.read_text().replace("replicas: 1", "replicas: 3"))
    subprocess.run(["git", "-C", str(clone), "commit", "-qam", "Our changes"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", "main"], check=True, env=GIT_ENV)
    return {"run": run, "remote": remote, "alice": alice, "scratch": tmp_path}


def show(remote: Path, ref: str, path: str) -> str:
    return git_log(remote, "show", f"{ref}:{path}")


def _drop_the_conflicting_edit(published: dict[str, Any]) -> None:
    clone = published["scratch"] / "team-clone"
    readme = clone / "README.md"
    readme.write_text(readme.read_text().replace("License: proprietary", "License: MIT"))
    subprocess.run(["git", "-C", str(clone), "commit", "-qam", "Back to MIT"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", "main"], check=True, env=GIT_ENV)


def test_it_pushes_the_new_version_to_a_branch_keeping_the_teams_edits(
    published: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    run, remote = published["run"], published["remote"]
    _drop_the_conflicting_edit(published)
    assert services.update_offer(run=run) is None  # nothing newer yet
    register("updatable-v2", published["scratch"])
    main_before = git_log(remote, "rev-parse", "main")
    offer = services.update_offer(run=run)
    assert offer is not None
    assert offer.version == "2.0.0"

    with django_capture_on_commit_callbacks() as callbacks:
        update = services.repository_update_start(actor=published["alice"], run=run)
    assert len(callbacks) == 1
    update = services.repository_update_execute(update_id=update.pk)

    assert update is not None
    assert update.state == RepositoryUpdate.State.SUCCEEDED, update.error
    assert update.branch == "portal/update-2.0.0"
    assert update.from_version is not None
    assert update.from_version.version == "1.0.0"
    assert update.conflicts == []
    assert git_log(remote, "rev-parse", "main") == main_before  # main is never touched
    assert git_log(remote, "rev-parse", "portal/update-2.0.0~1") == main_before
    config = show(remote, "portal/update-2.0.0", "config.yaml")
    assert "replicas: 3" in config
    assert "log_level: warning" in config
    assert "License: Apache-2.0" in show(remote, "portal/update-2.0.0", "README.md")
    assert "new_name.py" in git_log(remote, "ls-tree", "--name-only", "portal/update-2.0.0")
    assert "Alice Liddell" in git_log(remote, "log", "-1", "--format=%an", "portal/update-2.0.0")
    assert services.update_offer(run=run) is None  # done
    with pytest.raises(services.ScaffoldConflict):
        services.repository_update_start(actor=published["alice"], run=run)


def test_it_pushes_nothing_when_the_teams_edits_conflict(published: dict[str, Any]) -> None:
    run, remote = published["run"], published["remote"]
    register("updatable-v2", published["scratch"])
    main_before = git_log(remote, "rev-parse", "main")

    update = services.repository_update_start(actor=published["alice"], run=run)
    update = services.repository_update_execute(update_id=update.pk)

    assert update is not None
    assert update.state == RepositoryUpdate.State.FAILED
    assert update.conflicts == ["README.md"]
    assert "conflict with the template's in README.md; nothing was pushed" in update.error
    assert "scaffold --update" in update.error
    assert git_log(remote, "rev-parse", "main") == main_before
    assert "portal/update-2.0.0" not in git_log(remote, "branch", "--list")


def test_it_never_overwrites_an_existing_update_branch(published: dict[str, Any]) -> None:
    run, remote = published["run"], published["remote"]
    _drop_the_conflicting_edit(published)
    subprocess.run(["git", "-C", str(remote), "branch", "portal/update-2.0.0", "main"], check=True, env=GIT_ENV)
    theirs = git_log(remote, "rev-parse", "portal/update-2.0.0")
    register("updatable-v2", published["scratch"])

    update = services.repository_update_start(actor=published["alice"], run=run)
    update = services.repository_update_execute(update_id=update.pk)

    assert update is not None
    assert update.state == RepositoryUpdate.State.FAILED
    assert "portal/update-2.0.0 already exists" in update.error
    assert git_log(remote, "rev-parse", "portal/update-2.0.0") == theirs


def test_the_run_page_offers_the_update(published: dict[str, Any], django_capture_on_commit_callbacks: Any) -> None:
    run = published["run"]
    client = Client()
    client.force_login(published["alice"])
    page = reverse("scaffolder:run", args=[run.pk])
    assert "Update to" not in client.get(page).content.decode()
    register("updatable-v2", published["scratch"])
    assert "Update to 2.0.0" in client.get(page).content.decode()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("scaffolder:run-update", args=[run.pk]))
    assert response.status_code == 302
    assert len(callbacks) == 1
    html = client.get(page).content.decode()
    assert 'data-testid="update"' in html
    assert 'hx-trigger="every 1s"' in html  # the queued update keeps the page polling
    assert "Update to 2.0.0</button>" not in html
