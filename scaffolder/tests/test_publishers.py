"""The REST publishers against a local HTTP server implementing the few GitHub and GitLab endpoints used."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog.models import Agent
from portal.testing.servers import LocalHttpServer, RecordedRequest, Reply
from scaffolder import git, publishers, services
from scaffolder.models import ScaffoldRun
from scaffolder.tests.conftest import AGENT_VALUES, git_log

pytestmark = pytest.mark.django_db

GITHUB_TOKEN = "ghp_" + "A" * 36
GITLAB_TOKEN = "glpat-" + "B" * 20


class FakeForge:
    """GitHub's POST /user/repos and /orgs/{org}/repos and GitLab's POST /api/v4/projects: each creates a bare
    repository on disk and answers with its path as the clone URL; a taken name gets the real error answers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = LocalHttpServer(
            {
                "POST /user/repos": self.github_create,
                "POST /orgs/acme/repos": self.github_create,
                "POST /api/v4/projects": self.gitlab_create,
            }
        )

    def _create(self, name: str) -> Path | None:
        path = self.root / f"{name}.git"
        if path.exists():
            return None
        subprocess.run(["git", "init", "--bare", "--quiet", str(path)], check=True)
        return path

    def github_create(self, request: RecordedRequest) -> Reply:
        name = request.json()["name"]
        path = self._create(name)
        if path is None:
            errors = [
                {
                    "resource": "Repository",
                    "code": "custom",
                    "field": "name",
                    "message": "name already exists on this account",
                }
            ]
            return Reply(status=422, body={"message": "Repository creation failed.", "errors": errors})
        return Reply(
            status=201, body={"name": name, "clone_url": str(path), "html_url": f"https://github.test/acme/{name}"}
        )

    def gitlab_create(self, request: RecordedRequest) -> Reply:
        name = request.json()["name"]
        path = self._create(name)
        if path is None:
            return Reply(
                status=400, body={"message": {"name": ["has already been taken"], "path": ["has already been taken"]}}
            )
        return Reply(
            status=201,
            body={"path": name, "http_url_to_repo": path.as_uri(), "web_url": f"https://gitlab.test/g/{name}"},
        )


@pytest.fixture
def forge(tmp_path: Path, settings: Any) -> Iterator[FakeForge]:
    root = tmp_path / "forge"
    root.mkdir()
    fake = FakeForge(root)
    with fake.server:
        settings.SSRF_ALLOWLIST = ["127.0.0.1"]
        settings.SCAFFOLDER_GITHUB_API_URL = fake.server.base_url
        settings.SCAFFOLDER_GITHUB_TOKEN = GITHUB_TOKEN
        settings.SCAFFOLDER_GITLAB_API_URL = fake.server.url("/api/v4")
        settings.SCAFFOLDER_GITLAB_TOKEN = GITLAB_TOKEN
        settings.SCAFFOLDER_ALLOW_LOCAL_GIT = True
        yield fake


def run_with(world: dict[str, Any], publisher: str) -> ScaffoldRun:
    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, publisher=publisher,
        enqueue=False,
    )  # fmt: skip
    services.run_execute(run_id=run.pk)
    return ScaffoldRun.objects.get(pk=run.pk)


def all_text(run: ScaffoldRun) -> str:
    return run.error + "".join(step.log + str(step.output) for step in run.steps.all())


def test_github_creates_the_repository_then_pushes(world: dict[str, Any], forge: FakeForge) -> None:
    run = run_with(world, "github")

    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    assert run.repository_url == "https://github.test/acme/incident-helper"
    created = forge.server.requests_to("/user/repos")
    assert len(created) == 1
    assert created[0].header("Authorization") == f"Bearer {GITHUB_TOKEN}"
    assert created[0].header("X-GitHub-Api-Version") == "2022-11-28"
    assert created[0].json() == {
        "name": "incident-helper",
        "description": AGENT_VALUES["description"],
        "private": True,
        "auto_init": False,
    }
    assert git_log(forge.root / "incident-helper.git", "rev-parse", "main").strip() == run.commit_sha
    assert Agent.objects.get(name="incident-helper").repository_url == "https://github.test/acme/incident-helper"
    assert GITHUB_TOKEN not in all_text(run)


def test_github_creates_in_the_configured_organisation(world: dict[str, Any], forge: FakeForge, settings: Any) -> None:
    settings.SCAFFOLDER_GITHUB_ORG = "acme"
    run = run_with(world, "github")
    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    assert len(forge.server.requests_to("/orgs/acme/repos")) == 1


def test_github_refuses_a_name_that_already_exists(world: dict[str, Any], forge: FakeForge) -> None:
    forge._create("incident-helper")

    run = run_with(world, "github")

    assert run.state == ScaffoldRun.State.FAILED
    assert "GitHub already has a repository named 'incident-helper'" in run.error
    assert "never overwrites" in run.error
    assert git_log(forge.root / "incident-helper.git", "for-each-ref").strip() == ""  # nothing pushed


def test_gitlab_creates_the_project_then_pushes(world: dict[str, Any], forge: FakeForge, settings: Any) -> None:
    settings.SCAFFOLDER_GITLAB_NAMESPACE_ID = "42"

    run = run_with(world, "gitlab")

    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    assert run.repository_url == "https://gitlab.test/g/incident-helper"
    created = forge.server.requests_to("/api/v4/projects")
    assert created[0].header("PRIVATE-TOKEN") == GITLAB_TOKEN
    assert created[0].json()["namespace_id"] == "42"
    assert created[0].json()["visibility"] == "private"
    assert git_log(forge.root / "incident-helper.git", "rev-parse", "main").strip() == run.commit_sha
    assert GITLAB_TOKEN not in all_text(run)


@pytest.mark.parametrize("status", [400, 409])
def test_gitlab_refuses_a_name_that_is_taken(world: dict[str, Any], forge: FakeForge, status: int) -> None:
    forge.server.route(
        "POST /api/v4/projects", Reply(status=status, body={"message": {"name": ["has already been taken"]}})
    )
    run = run_with(world, "gitlab")
    assert run.state == ScaffoldRun.State.FAILED
    assert "GitLab already has a project named 'incident-helper'" in run.error


def test_a_retry_does_not_create_the_repository_twice(world: dict[str, Any], forge: FakeForge) -> None:
    original = forge.github_create

    def create_then_break_the_push(request: RecordedRequest) -> Reply:
        reply = original(request)
        (forge.root / "incident-helper.git").rename(forge.root / "moved.git")  # push will fail
        return reply

    forge.server.route("POST /user/repos", create_then_break_the_push)
    run = run_with(world, "github")
    assert run.state == ScaffoldRun.State.FAILED
    assert run.steps.get(step_id="publish").output["clone_url"].endswith("incident-helper.git")

    (forge.root / "moved.git").rename(forge.root / "incident-helper.git")
    services.run_retry(actor=world["alice"], run=run)
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()

    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    assert len(forge.server.requests_to("/user/repos")) == 1


def test_api_errors_are_reported_without_the_token(world: dict[str, Any], forge: FakeForge) -> None:
    forge.server.route("POST /user/repos", Reply(status=401, body={"message": f"Bad credentials for {GITHUB_TOKEN}"}))
    run = run_with(world, "github")
    assert run.state == ScaffoldRun.State.FAILED
    assert "GitHub answered HTTP 401: Bad credentials" in run.error
    assert GITHUB_TOKEN not in all_text(run)


def test_clone_urls_from_an_api_are_checked(world: dict[str, Any], forge: FakeForge, settings: Any) -> None:
    forge.server.route("POST /user/repos", Reply(status=201, body={"clone_url": "ext::sh -c 'touch /tmp/x'"}))
    run = run_with(world, "github")
    assert "unsupported clone URL" in run.error

    forge.server.route("POST /user/repos", Reply(status=201, body={"clone_url": "/srv/git/x.git"}))
    settings.SCAFFOLDER_ALLOW_LOCAL_GIT = False
    run.delete()
    Agent.objects.all().delete()
    run = run_with(world, "github")
    assert "local clone URL" in run.error


def test_push_credentials_travel_in_the_environment_scoped_to_one_origin() -> None:
    auth = git.GitAuth.basic("https://git.example.com/acme/x.git", "x-access-token", "s3cret-token")
    env = git.git_environment(auth=auth)
    keys = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    header = keys["http.https://git.example.com/.extraHeader"]
    assert header == "Authorization: Basic " + base64.b64encode(b"x-access-token:s3cret-token").decode()
    assert keys["protocol.allow"] == "never"
    assert keys["http.followRedirects"] == "false"
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert git.redact(f"failed {header}", auth.secrets) == "failed Authorization: Basic ***"


def test_available_publishers_follow_the_settings(settings: Any) -> None:
    settings.SCAFFOLDER_GIT_REMOTE_BASE = ""
    settings.SCAFFOLDER_GITHUB_TOKEN = "t"
    assert publishers.available_publishers() == ["github", "none"]
