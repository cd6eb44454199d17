from __future__ import annotations

import socket
from typing import Any

import pytest
from django.db import connections
from django.db.utils import load_backend

from portal import views
from portal.tasks import record_heartbeat


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_the_database(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ok_when_database_and_broker_answer(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_down(client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    down = dict(connections["default"].settings_dict)
    if connections["default"].vendor == "sqlite":
        down["NAME"] = str(tmp_path / "no-such-dir" / "portal.sqlite3")
    else:
        down.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    unreachable = load_backend(down["ENGINE"]).DatabaseWrapper(down, alias="default")
    monkeypatch.setattr(views, "connections", {"default": unreachable})

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("database unreachable")
    assert body["checks"]["broker"] == "ok"


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_down(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from celery import Celery

    dead_url = f"redis://127.0.0.1:{_closed_port()}/0"
    # Celery lets the CELERY_BROKER_URL environment variable win over the app's own setting.
    monkeypatch.setenv("CELERY_BROKER_URL", dead_url)
    dead = Celery("dead", broker=dead_url, set_as_current=False)
    monkeypatch.setattr(views, "celery_app", dead)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("broker unreachable")
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_metrics_count_requests_by_view_and_tasks_by_state(client: Any) -> None:
    client.get("/healthz")
    record_heartbeat.apply(args=["metrics-probe"])
    body = client.get("/metrics").content.decode()
    assert 'view="healthz"' in body
    assert "django_http_requests_latency_seconds_by_view_method" in body
    assert 'portal_celery_tasks_total{state="success",task="portal.record_heartbeat"}' in body


def test_metrics_require_the_token_when_one_is_configured(client: Any, settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics").status_code == 200
