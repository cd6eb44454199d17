"""Runs end to end on the real database and real git: render, commit, publish, register, request grants."""

from __future__ import annotations

import io
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from approvals.models import ApprovalRequest
from catalog.models import Agent, Tool, ToolGrant
from portal.models import AuditEvent
from scaffolder import registering, services
from scaffolder.models import GoldenPathTemplate, RunStep, ScaffoldRun, TemplateVersion
from scaffolder.tests.conftest import AGENT_VALUES, FIXTURES, MCP_VALUES, git_log

pytestmark = pytest.mark.django_db


def start(world: dict[str, Any], template: str = "python-agent", values: dict[str, Any] | None = None, **kwargs: Any):  # type: ignore[no-untyped-def]
    return services.run_start(
        actor=world["alice"],
        template=world["templates"][template],
        values=dict(AGENT_VALUES if values is None else values),
        enqueue=False,
        **kwargs,
    )


def execute(run: ScaffoldRun) -> ScaffoldRun:
    result = services.run_execute(run_id=run.pk)
    assert result is not None
    return ScaffoldRun.objects.get(pk=run.pk)


def steps(run: ScaffoldRun) -> dict[str, RunStep]:
    return {step.step_id: step for step in run.steps.all()}


# --- the whole run ---------------------------------------------------------------------------------------------


def test_it_publishes_registers_and_onboards_a_python_agent(world: dict[str, Any], make_bare: Any) -> None:
    remote = make_bare("incident-helper")

    run = execute(start(world, publisher="git"))

    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    assert [s.status for s in run.steps.all()] == ["succeeded"] * 5
    assert git_log(remote, "rev-parse", "refs/heads/main").strip() == run.commit_sha
    author = git_log(remote, "log", "-1", "--format=%an <%ae>|%cn|%ct", "main").strip()
    assert author == f"Alice Liddell <alice@example.com>|Alice Liddell|{int(run.created_at.timestamp())}"
    files = git_log(remote, "ls-tree", "-r", "--name-only", "main").split()
    assert {"catalog-info.yaml", ".portal-answers.yml", "incident_helper/agent.py", "evals/golden.yaml"} <= set(files)
    assert run.repository_url == str(remote)

    agent = Agent.objects.get(name="incident-helper")
    assert run.agent == agent
    assert agent.owner.name == "sre-team"
    assert agent.status == Agent.Status.ONBOARDING  # registered as a draft, then onboarding was filed
    assert sorted(agent.requested_tools) == ["github", "pagerduty"]
    onboarding = ApprovalRequest.objects.get(agent=agent, kind="agent_onboarding")
    grants = ToolGrant.objects.filter(agent=agent).order_by("tool__name")
    assert [(g.tool.name, g.status, g.environment) for g in grants] == [
        ("github", "requested", "production"),
        ("pagerduty", "requested", "production"),
    ]
    grant_requests = ApprovalRequest.objects.filter(grant__in=grants, kind="tool_grant")
    assert grant_requests.count() == 2
    assert sorted(run.approval_request_ids) == sorted([onboarding.pk, *grant_requests.values_list("pk", flat=True)])
    assert onboarding.requester == world["alice"]


def test_it_publishes_registers_and_onboards_an_mcp_server(world: dict[str, Any], make_bare: Any) -> None:
    remote = make_bare("items-api")

    run = execute(start(world, "mcp-server", MCP_VALUES, publisher="git"))

    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    assert git_log(remote, "rev-parse", "main").strip() == run.commit_sha
    tool = Tool.objects.get(name="items-api")
    assert run.tool == tool
    assert tool.status == Tool.Status.PENDING_REVIEW
    assert tool.kind == Tool.Kind.MCP_SERVER
    request = ApprovalRequest.objects.get(tool=tool, kind="tool_onboarding")
    assert run.approval_request_ids == [request.pk]


def test_it_offers_the_repository_as_a_reproducible_zip(world: dict[str, Any], tmp_path: Path) -> None:
    run = execute(start(world))

    archive = zipfile.ZipFile(io.BytesIO(bytes(run.archive)))
    names = archive.namelist()
    assert "incident-helper/catalog-info.yaml" in names
    assert run.archive_name == "incident-helper.zip"
    assert steps(run)["publish"].status == RunStep.Status.SKIPPED  # no publisher: download only
    # The commit is a function of the run: re-creating it anywhere gives the same id.
    assert services.run_materialise(run=run, folder=tmp_path / "again") == run.commit_sha


def test_it_links_the_catalog_entry_to_a_web_repository(world: dict[str, Any]) -> None:
    document = services._with_repository("catalog-info.yaml", b"metadata:\n  name: x\n", "https://git.example/x")
    assert yaml.safe_load(document)["metadata"]["annotations"] == {
        "backstage.io/source-location": "url:https://git.example/x"
    }
    assert services._with_repository("catalog-info.yaml", b"a: 1\n", "/srv/git/x.git") == b"a: 1\n"


def test_it_records_each_run_in_the_audit_trail(world: dict[str, Any]) -> None:
    run = execute(start(world))
    actions = set(AuditEvent.objects.filter(object_type="scaffolder.scaffoldrun").values_list("action", flat=True))
    assert actions == {"scaffolder.run.started", "scaffolder.run.succeeded"}
    created = AuditEvent.objects.get(action="catalog.agent.created", object_id=str(run.agent_id))
    assert created.actor_label == "alice"


# --- retry and idempotency ----------------------------------------------------------------------------------


def test_it_retries_from_the_failed_step_without_redoing_earlier_ones(
    world: dict[str, Any], make_bare: Any, django_capture_on_commit_callbacks: Any
) -> None:
    run = execute(start(world, publisher="git"))  # the remote repository does not exist yet

    assert run.state == ScaffoldRun.State.FAILED
    assert "Publish the repository failed" in run.error
    before = steps(run)
    assert [before[i].status for i in ("render", "commit", "publish", "register", "grants")] == [
        "succeeded", "succeeded", "failed", "pending", "pending",
    ]  # fmt: skip
    assert "cannot read" in before["publish"].log
    assert not Agent.objects.exists()

    remote = make_bare("incident-helper")
    with django_capture_on_commit_callbacks() as callbacks:
        services.run_retry(actor=world["alice"], run=run)
    assert len(callbacks) == 1  # the run is queued again
    run = execute(run)

    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    after = steps(run)
    assert after["render"].attempts == 1
    assert after["commit"].attempts == 1
    assert after["render"].finished_at == before["render"].finished_at
    assert after["publish"].attempts == 2
    assert "--- attempt 2 ---" in after["publish"].log
    assert git_log(remote, "rev-parse", "main").strip() == run.commit_sha
    assert Agent.objects.filter(name="incident-helper").count() == 1


def test_it_only_retries_failed_runs(world: dict[str, Any]) -> None:
    run = execute(start(world))
    with pytest.raises(services.ScaffoldConflict):
        services.run_retry(actor=world["alice"], run=run)


def test_it_lets_only_the_requester_retry(world: dict[str, Any], make_user: Callable[..., Any]) -> None:
    run = execute(start(world, publisher="git"))
    with pytest.raises(services.ScaffoldPermissionError):
        services.run_retry(actor=make_user("mallory"), run=run)


def test_it_recreates_the_work_folder_on_another_worker(
    world: dict[str, Any], make_bare: Any, scaffolder_dirs: dict[str, Path]
) -> None:
    import shutil

    run = execute(start(world, publisher="git"))
    assert run.state == ScaffoldRun.State.FAILED
    shutil.rmtree(scaffolder_dirs["work"] / "runs")  # the retry lands on a worker without that folder
    make_bare("incident-helper")
    services.run_retry(actor=world["alice"], run=run)

    run = execute(run)

    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    assert "Re-creating the work folder" in steps(run)["publish"].log


@pytest.mark.parametrize("step_id", ["render", "commit", "publish", "register", "grants"])
def test_it_runs_each_step_twice_without_duplicate_effects(world: dict[str, Any], make_bare: Any, step_id: str) -> None:
    remote = make_bare("incident-helper")
    run = execute(start(world, publisher="git"))
    counts = (Agent.objects.count(), ToolGrant.objects.count(), ApprovalRequest.objects.count())
    step = steps(run)[step_id]

    assert services.step_execute(run=run, step=step) is None

    run.refresh_from_db()
    assert (Agent.objects.count(), ToolGrant.objects.count(), ApprovalRequest.objects.count()) == counts
    assert git_log(remote, "rev-parse", "main").strip() == run.commit_sha
    assert step.attempts == 2
    assert sorted(run.approval_request_ids) == sorted(ApprovalRequest.objects.values_list("pk", flat=True))


def test_it_claims_a_run_once(world: dict[str, Any]) -> None:
    run = start(world)
    assert services.run_execute(run_id=run.pk) is not None
    assert services.run_execute(run_id=run.pk) is None  # a duplicate delivery does nothing


# --- publishing never overwrites ------------------------------------------------------------------------------


def test_the_git_publisher_refuses_an_existing_non_empty_repository(
    world: dict[str, Any], make_bare: Any, tmp_path: Path
) -> None:
    remote = make_bare("incident-helper")
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / "README").write_text("someone else's work\n")
    env = {"GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@x", "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@x"}
    subprocess.run(["git", "-C", str(other), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(other), "commit", "-qm", "theirs"], check=True, env={**env, "PATH": "/usr/bin:/bin"}
    )
    subprocess.run(["git", "-C", str(other), "push", "-q", str(remote), "HEAD:refs/heads/main"], check=True)
    theirs = git_log(remote, "rev-parse", "main").strip()

    run = execute(start(world, publisher="git"))

    assert run.state == ScaffoldRun.State.FAILED
    assert "already exists and is not empty" in run.error
    assert "never overwrites" in run.error
    assert git_log(remote, "rev-parse", "main").strip() == theirs


# --- input checks ------------------------------------------------------------------------------------------------


def test_it_refuses_schema_violations_field_by_field(world: dict[str, Any]) -> None:
    with pytest.raises(services.ScaffoldError) as caught:
        start(world, values={**AGENT_VALUES, "name": "Bad Name", "autonomy_level": 9, "agent_type": "wizard"})
    assert set(caught.value.errors) == {"name", "autonomy_level", "agent_type"}
    assert ScaffoldRun.objects.count() == 0


def test_it_refuses_a_ten_megabyte_value(world: dict[str, Any]) -> None:
    with pytest.raises(services.ScaffoldError) as caught:
        start(world, values={**AGENT_VALUES, "description": "x" * (10 * 1024 * 1024)})
    assert caught.value.errors == {"description": ["Value too large."]}


def test_it_keeps_template_injection_literal(world: dict[str, Any]) -> None:
    description = "{{ 7*7 }} {{ ''.__class__.__mro__ }} {% raw %}"
    run = execute(start(world, values={**AGENT_VALUES, "description": description}))
    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error
    assert Agent.objects.get(name="incident-helper").description == description
    zipped = zipfile.ZipFile(io.BytesIO(bytes(run.archive)))
    assert description in zipped.read("incident-helper/README.md").decode()
    assert "49" not in zipped.read("incident-helper/catalog-info.yaml").decode()


def test_it_only_creates_for_teams_the_requester_maintains(
    world: dict[str, Any], make_team: Callable[..., Any]
) -> None:
    make_team("payments")
    with pytest.raises(services.ScaffoldError) as caught:
        start(world, values={**AGENT_VALUES, "owner": "payments"})
    assert list(caught.value.errors) == ["owner"]
    assert "sre-team" in caught.value.errors["owner"][0]


def test_it_only_requests_tools_the_catalog_knows(world: dict[str, Any]) -> None:
    with pytest.raises(services.ScaffoldError) as caught:
        start(world, values={**AGENT_VALUES, "tools": ["github", "jira"]})
    assert caught.value.errors == {"tools": ["Not in the catalog: jira. Pick tools the catalog knows."]}


def test_it_refuses_a_name_the_catalog_already_uses(world: dict[str, Any]) -> None:
    with pytest.raises(services.ScaffoldError) as caught:
        start(world, values={**AGENT_VALUES, "name": "github"})
    assert list(caught.value.errors) == ["name"]


def test_it_never_takes_over_an_entity_it_did_not_create(world: dict[str, Any]) -> None:
    from catalog import services as catalog

    run = start(world)
    catalog.agent_create(actor=world["alice"], data={"name": "incident-helper", "owner": "sre-team"})

    run = execute(run)

    assert run.state == ScaffoldRun.State.FAILED
    assert "that this run did not create" in run.error
    assert run.agent is None


def test_it_refuses_unconfigured_publishers(world: dict[str, Any]) -> None:
    with pytest.raises(services.ScaffoldError) as caught:
        start(world, publisher="github")
    assert list(caught.value.errors) == ["publisher"]


# --- preview -----------------------------------------------------------------------------------------------------


def test_preview_writes_nothing(world: dict[str, Any], scaffolder_dirs: dict[str, Path]) -> None:
    version = world["templates"]["python-agent"].latest
    services.golden_path_for(version)  # the template's own files may be cached on disk beforehand
    cached = sorted(scaffolder_dirs["work"].rglob("*"))
    counts = (ScaffoldRun.objects.count(), Agent.objects.count(), AuditEvent.objects.count())

    files = services.preview_render(version=version, values=AGENT_VALUES)

    assert "incident_helper/mcp_tools.py" in files
    assert sorted(scaffolder_dirs["work"].rglob("*")) == cached
    assert not list(scaffolder_dirs["remotes"].iterdir())
    assert (ScaffoldRun.objects.count(), Agent.objects.count(), AuditEvent.objects.count()) == counts


# --- templates and versions ---------------------------------------------------------------------------------------


def test_it_registers_builtin_templates_idempotently(builtin: dict[str, Any]) -> None:
    again = registering.templates_register_builtin()
    assert {item.outcome for item in again} == {"unchanged"}
    assert TemplateVersion.objects.count() == 2
    template = GoldenPathTemplate.objects.get(name="python-agent")
    assert template.latest is not None
    assert template.version == template.latest.version == "1.1.0"
    assert "agent_type" in template.parameters_schema["properties"]


def test_it_keeps_every_version_so_old_ones_can_be_rendered(db: None, tmp_path: Path) -> None:
    import shutil

    from scaffolder.manifest import load_golden_path

    folder = tmp_path / "updatable"
    shutil.copytree(FIXTURES / "updatable-v1", folder)
    first = registering.template_register(golden_path=load_golden_path(folder), builtin_folder="updatable")
    shutil.rmtree(folder)
    shutil.copytree(FIXTURES / "updatable-v2", folder)
    second = registering.template_register(golden_path=load_golden_path(folder), builtin_folder="updatable")
    shutil.rmtree(folder)  # the files now only live in the database

    template = GoldenPathTemplate.objects.get(name="updatable")
    assert [v.version for v in template.versions.order_by("created_at")] == ["1.0.0", "2.0.0"]
    assert template.latest == second.version
    old = services.golden_path_for(services.template_version_find(template=template, version="1.0.0"))
    assert "old_name.py" in services.render_golden_path(old, {"name": "svc", "owner": "x"})
    assert first.version.content_hash != second.version.content_hash


def git_commit_all(repo: Path, message: str = "template") -> str:
    env = {
        "PATH": "/usr/bin:/bin",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", message], check=True, env=env)
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_it_registers_a_template_from_git_and_records_the_commit(db: None, tmp_path: Path) -> None:
    import shutil

    source = tmp_path / "templates-repo"
    shutil.copytree(FIXTURES / "updatable-v1", source / "golden" / "updatable")
    commit = git_commit_all(source)

    registered = registering.template_register_git(actor=None, url=str(source), ref="main", path="golden/updatable")

    assert registered.outcome == "created"
    assert registered.version.git_commit == commit
    template = registered.version.template
    assert (template.source, template.git_url, template.git_path) == ("git", str(source), "golden/updatable")
    again = registering.template_register_git(actor=None, url=str(source), ref="main", path="golden/updatable")
    assert again.outcome == "unchanged"


def test_it_refuses_a_git_template_whose_folder_escapes_the_repository(db: None, tmp_path: Path) -> None:
    import shutil

    outside = tmp_path / "outside"
    shutil.copytree(FIXTURES / "updatable-v1", outside)
    source = tmp_path / "templates-repo"
    source.mkdir()
    (source / "README.md").write_text("templates\n")
    (source / "linked").symlink_to(outside)
    git_commit_all(source)

    with pytest.raises(services.ScaffoldError) as caught:
        registering.template_register_git(actor=None, url=str(source), path="linked")
    assert "symlink" in caught.value.errors["path"][0]
    with pytest.raises(services.ScaffoldError) as caught:
        registering.template_register_git(actor=None, url=str(source), path="../outside")
    assert list(caught.value.errors) == ["git_path"]
    assert not GoldenPathTemplate.objects.filter(source="git").exists()


def test_it_refuses_a_git_template_with_a_symlinked_file(db: None, tmp_path: Path) -> None:
    import shutil

    source = tmp_path / "templates-repo"
    shutil.copytree(FIXTURES / "updatable-v1", source)
    (source / "files" / "passwd").symlink_to("/etc/passwd")
    git_commit_all(source)

    with pytest.raises(services.ScaffoldError) as caught:
        registering.template_register_git(actor=None, url=str(source))
    assert "symlink" in caught.value.errors["path"][0]


def test_it_refuses_local_git_sources_in_production(db: None, settings: Any) -> None:
    settings.SCAFFOLDER_ALLOW_LOCAL_GIT = False
    with pytest.raises(services.ScaffoldError) as caught:
        registering.template_register_git(actor=None, url="/srv/templates")
    assert list(caught.value.errors) == ["git_url"]
    with pytest.raises(services.ScaffoldError):
        registering.template_register_git(actor=None, url="ext::sh -c touch% /tmp/pwned")


def test_only_platform_admins_register_git_templates(db: None, make_user: Callable[..., Any]) -> None:
    with pytest.raises(services.ScaffoldPermissionError):
        registering.template_register_git(actor=make_user("eve"), url="https://example.com/t.git")


def test_it_refuses_a_git_template_that_reaches_for_python_internals(db: None, tmp_path: Path) -> None:
    import shutil

    source = tmp_path / "templates-repo"
    shutil.copytree(FIXTURES / "updatable-v1", source)
    (source / "files" / "evil.txt").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    git_commit_all(source)

    with pytest.raises(services.ScaffoldError) as caught:
        registering.template_register_git(actor=None, url=str(source))
    message = caught.value.errors["path"][0]
    assert "files/evil.txt" in message
    assert "is not allowed (templates may not reach Python internals" in message
    assert not GoldenPathTemplate.objects.filter(source="git").exists()


def test_it_takes_over_a_run_whose_worker_died(world: dict[str, Any]) -> None:
    from datetime import timedelta

    from django.utils import timezone

    run = start(world)
    soon = timezone.now() + timedelta(minutes=5)
    ScaffoldRun.objects.filter(pk=run.pk).update(state=ScaffoldRun.State.RUNNING, lease_until=soon)
    assert services.run_execute(run_id=run.pk) is None  # still leased to the (maybe dead) worker
    remaining = services.run_lease_remaining(run_id=run.pk)
    assert remaining is not None
    assert 200 < remaining <= 300

    ScaffoldRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert execute(run).state == ScaffoldRun.State.SUCCEEDED
    assert services.run_lease_remaining(run_id=run.pk) is None
