"""Fixtures shared by every app's tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

# Playwright's sync API runs an event loop in the main thread; Django would otherwise refuse ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

DEMO_PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _audit_checkpoints_per_test(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test's database starts afresh, so its audit checkpoints go to a file of its own."""
    settings.AUDIT_CHECKPOINT_PATH = tmp_path_factory.mktemp("audit") / "audit-checkpoints.jsonl"


@pytest.fixture(autouse=True)
def _denied_checks_per_test() -> Iterable[None]:
    """Denied grant checks are remembered per process (runtime.denials); each test's database starts afresh."""
    from runtime.denials import denied_checks

    denied_checks.forget()
    yield
    denied_checks.forget()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    from portal.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    # Not propagating, so retries run eagerly as they would on a worker (Retry is not an error).
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    from django.contrib.auth import get_user_model

    from portal.roles import ENGINEER, role_group

    def make(username: str = "user", *, roles: Iterable[str] = (), password: str = DEMO_PASSWORD, **extra: Any) -> Any:
        user = get_user_model().objects.create_user(
            username=username, password=password, email=f"{username}@example.com", **extra
        )
        user.groups.add(role_group(ENGINEER), *(role_group(role) for role in roles))
        return user

    return make


@pytest.fixture
def make_team(db: None) -> Callable[..., Any]:
    from catalog.teams import team_create, team_set_member

    def make(name: str = "team", *, maintainers: Iterable[Any] = (), members: Iterable[Any] = ()) -> Any:
        team = team_create(name=name, title=name.title())
        for user in maintainers:
            team_set_member(team=team, user=user, role="maintainer")
        for user in members:
            team_set_member(team=team, user=user, role="member")
        return team

    return make


@pytest.fixture
def api_client() -> Any:
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def token_client(make_user: Callable[..., Any]) -> Callable[..., Any]:
    """An API client authenticated by a real token with the given scopes."""
    from rest_framework.test import APIClient

    from portal.tokens import token_issue

    def make(user: Any = None, scopes: Iterable[str] = ("read",)) -> Any:
        user = user or make_user("token-user")
        issued = token_issue(issued_by=user, name="test", scopes=list(scopes), expires_in_days=30)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        client.user = user
        client.token = issued.token
        return client

    return make


@pytest.fixture
def celery_worker_process(transactional_db: None, tmp_path: Any) -> Any:
    """A real worker process on the configured broker (Redis in CI; a filesystem broker in a temporary folder
    when none is configured) and the test database. Yields a WorkerProcess; stops it afterwards."""
    from django.conf import settings

    from portal.celery import app
    from portal.testing.worker import WorkerProcess, use_broker

    original = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    var_dir = tmp_path / "var"
    if not broker_url or broker_url.startswith("memory://"):
        broker_url = "filesystem://"
        folders = {sub: var_dir / "celery" / sub for sub in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
            "polling_interval": 0.1,
        }
    else:
        options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    use_broker(app, broker_url, options)
    app.control.purge()  # stale messages from earlier runs must not reach this worker
    worker = WorkerProcess(broker_url=broker_url, var_dir=var_dir, log_path=tmp_path / "worker")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop_all()
        use_broker(app, *original)
