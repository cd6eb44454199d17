"""Imports too large for a web request run in a Celery worker: the UI and the API queue them, show their phase,
then their report; a web request never starts YAML worker processes."""

from __future__ import annotations

import subprocess
import textwrap
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog import import_runs
from catalog.formats import parallel
from catalog.models import Agent, ImportRun, ImportRunInput
from portal.models import AuditEvent
from portal.roles import PLATFORM_ADMIN

pytestmark = pytest.mark.django_db

AGENT = textwrap.dedent(
    """\
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata:
      name: {name}
      description: Drafts release notes.
    spec:
      type: ai-agent
      lifecycle: production
      owner: group:platform
    """
)


def agents(count: int, prefix: str = "notes") -> str:
    return "---\n".join(AGENT.format(name=f"{prefix}-{i}") for i in range(count))


@pytest.fixture
def owner(make_user: Any, make_team: Any) -> Any:
    user = make_user("olivia")
    make_team("platform", maintainers=[user])
    return user


@pytest.fixture
def small_inline_limit(settings: Any) -> None:
    settings.IMPORT_INLINE_MAX_BYTES = 1024


@pytest.fixture
def started_processes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every YAML worker process started (they still run: the real Popen is called)."""
    started: list[list[str]] = []
    real = subprocess.Popen

    def recording(command: list[str], *args: Any, **kwargs: Any) -> Any:
        started.append(command)
        return real(command, *args, **kwargs)

    monkeypatch.setattr(parallel.subprocess, "Popen", recording)
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    return started


@pytest.mark.usefixtures("small_inline_limit", "eager_celery")
def test_a_large_ui_import_runs_in_a_worker_and_its_page_shows_the_report(
    client: Any, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(reverse("catalog:import"), {"text": agents(20)})
    run = ImportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/catalog/import/runs/{run.pk}/"
    assert (run.state, run.files, run.created_by) == ("queued", 1, owner)
    assert not Agent.objects.exists()

    waiting = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="queued"' in waiting and 'hx-trigger="every 1s"' in waiting and "<html" not in waiting

    for callback in queued:
        callback()  # the commit hands the run to the (eager) worker
    run.refresh_from_db()
    assert (run.state, run.entities, run.report["created"]) == ("done", 20, 20)
    assert Agent.objects.count() == 20 and not ImportRunInput.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert 'data-state="done"' in page and "hx-trigger" not in page
    assert 'data-testid="count-created">20<' in page and 'href="/catalog/agents/notes-3/"' in page
    # The person who started it is the actor of what it wrote, not "system".
    created = AuditEvent.objects.filter(action="catalog.agent.created").first()
    assert created is not None and created.actor_label == "olivia"
    assert list(
        AuditEvent.objects.filter(action__startswith="catalog.import.").order_by("pk").values_list("action", flat=True)
    ) == [
        "catalog.import.queued",
        "catalog.import.finished",
    ]


@pytest.mark.usefixtures("small_inline_limit", "eager_celery")
def test_a_large_api_import_answers_202_and_its_run_shows_the_report_to_its_author_and_admins(
    token_client: Any, owner: Any, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    api = token_client(owner, scopes=["read", "write"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/import/", {"content": agents(12), "filename": "big.yaml"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "queued" and response["Location"].endswith(f"/api/v1/imports/{body['id']}/")
    run = api.get(f"/api/v1/imports/{body['id']}/").json()
    assert (run["state"], run["entities"], run["report"]["created"]) == ("done", 12, 12)
    assert token_client(make_user("mallory"), scopes=["read"]).get(f"/api/v1/imports/{body['id']}/").status_code == 404
    admin = make_user("ada", roles=[PLATFORM_ADMIN])
    assert token_client(admin, scopes=["read", "admin"]).get(f"/api/v1/imports/{body['id']}/").status_code == 200


def test_small_imports_stay_in_the_request_and_never_start_worker_processes(
    client: Any, owner: Any, started_processes: list[list[str]]
) -> None:
    client.force_login(owner)
    text = agents(2600)  # past parallel.PARALLEL_MIN_DOCUMENTS, under IMPORT_INLINE_MAX_BYTES
    assert import_runs.import_runs_inline([("pasted", text.encode())])
    response = client.post(reverse("catalog:import"), {"text": text, "dry_run": "on"})
    assert response.status_code == 200 and 'data-testid="count-created">2600<' in response.content.decode()
    assert started_processes == []
    assert not ImportRun.objects.exists()


@pytest.mark.usefixtures("small_inline_limit")
def test_a_run_in_a_worker_may_parse_on_every_core(owner: Any, started_processes: list[list[str]]) -> None:
    run = import_runs.import_run_queue(inputs=[("big.yaml", agents(2600).encode())], actor=owner, dry_run=True)
    done = import_runs.import_run_execute(run_id=run.pk)
    assert done is not None and done.report is not None and done.report["created"] == 2600
    assert len(started_processes) >= 1


def test_a_run_is_taken_once_and_again_only_when_its_worker_died(owner: Any, settings: Any) -> None:
    run = import_runs.import_run_queue(inputs=[("a.yaml", agents(1).encode())], actor=owner)
    ImportRun.objects.filter(pk=run.pk).update(state="parsing", started_at=timezone.now())
    assert import_runs.import_run_execute(run_id=run.pk) is None  # another worker has it
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    ImportRun.objects.filter(pk=run.pk).update(started_at=long_ago)
    again = import_runs.import_run_execute(run_id=run.pk)
    assert again is not None and again.state == "done" and Agent.objects.filter(name="notes-0").exists()
    assert import_runs.import_run_execute(run_id=run.pk) is None  # done: never twice


def test_a_run_that_fails_says_so_and_saves_nothing(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run = import_runs.import_run_queue(inputs=[("a.yaml", agents(3).encode())], actor=owner)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(import_runs, "import_parsed", broken)
    failed = import_runs.import_run_execute(run_id=run.pk)
    assert failed is not None and failed.state == "failed" and "MemoryError" in failed.problem
    assert not Agent.objects.exists() and not ImportRunInput.objects.exists()
