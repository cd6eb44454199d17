"""The grant check over real HTTP, through two gunicorn workers: what one process changes, every worker answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from agents_api.grant_index import GENERATION_MAX_AGE
from agents_api.testing import PortalServer
from catalog import services as catalog
from portal.testing.worker import database_url_for_current_connection
from portal.tokens import token_issue

pytestmark = pytest.mark.django_db(transaction=True)
ASKS = 24  # on fresh connections, so both workers answer some of them


@pytest.fixture
def portal(transactional_db: None, tmp_path: Path) -> Iterator[PortalServer]:
    database_url = database_url_for_current_connection()
    with PortalServer(database_url=database_url, var_dir=tmp_path / "var", workers=2, threads=2) as server:
        yield server


def ask(portal: PortalServer, token: str, **body: Any) -> list[dict[str, Any]]:
    answers = []
    for _ in range(ASKS):
        response = requests.post(
            portal.url("/api/v1/grants/check/"),
            json=body,
            headers={"Authorization": f"Bearer {token}", "Connection": "close"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def test_a_revoke_in_this_process_is_answered_by_every_worker_within_the_index_age(
    portal: PortalServer, world: dict[str, Any], make_grant: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    token = token_issue(issued_by=make_user("gateway"), name="gw", scopes=["read"], expires_in_days=1).secret
    grant = make_grant(capabilities=["get_file"])
    call = {"agent": "pr-reviewer", "tool": "github-mcp", "capability": "get_file"}

    assert {answer["allowed"] for answer in ask(portal, token, **call)} == {True}
    other = {answer["verdict"] for answer in ask(portal, token, **{**call, "capability": "create_issue"})}
    assert other == {"capability_not_granted"}

    catalog.grant_set_status(grant=grant, status="revoked", reason="incident")  # committed: no test transaction
    time.sleep(GENERATION_MAX_AGE)

    answers = ask(portal, token, **call)
    assert {(answer["allowed"], answer["verdict"], answer["grant"]) for answer in answers} == {
        (False, "grant_revoked", grant.pk)
    }


def test_an_expired_grant_is_denied_over_http(
    portal: PortalServer, world: dict[str, Any], make_grant: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    token = token_issue(issued_by=make_user("gateway"), name="gw", scopes=["read"], expires_in_days=1).secret
    make_grant(capabilities=["get_file"], expires_in=-timedelta(minutes=1))
    (answer, *_) = ask(portal, token, agent="pr-reviewer", tool="github-mcp", capability="get_file")
    assert (answer["allowed"], answer["verdict"]) == (False, "grant_expired")


@pytest.mark.parametrize("log_them", [False, True])
def test_checks_answered_in_front_stay_out_of_the_access_log_unless_asked(
    transactional_db: None, tmp_path: Path, world: dict[str, Any], make_user: Callable[..., Any], log_them: bool
) -> None:
    token = token_issue(issued_by=make_user("gateway"), name="gw", scopes=["read"], expires_in_days=1).secret
    access_log = tmp_path / "access.log"
    extra_env = {"WEB_ACCESS_LOG_GRANT_CHECKS": "1"} if log_them else {}
    database_url = database_url_for_current_connection()
    server = PortalServer(
        database_url=database_url, var_dir=tmp_path / "var", workers=1, threads=1, extra_env=extra_env,
        access_log=access_log,
    )  # fmt: skip
    with server, requests.Session() as session:
        for _ in range(3):  # the first is the view's (a token seen for the first time), the others the front's
            response = session.post(
                server.url("/api/v1/grants/check/"),
                json={"agent": "pr-reviewer", "tool": "github-mcp"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
        assert session.post(server.url("/api/v1/grants/check/"), json={}, timeout=30).status_code == 401
        assert session.get(server.url("/healthz"), timeout=30).status_code == 200
    lines = access_log.read_text().splitlines()
    checks = [line for line in lines if "/api/v1/grants/check/" in line]
    assert [" 200 " in line for line in checks] == ([True, True, True, False] if log_them else [True, False])
    assert "GET /healthz" in lines[-1]  # other requests are logged as before
