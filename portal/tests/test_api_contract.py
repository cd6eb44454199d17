"""The API's contract: JSON errors for unknown paths and ids, 400 for unknown list parameters."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(token_client: Any) -> Any:
    return token_client(scopes=["read"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here/",
        "/api/v1/approvals/requests/not-a-number/",
        "/api/v1/approvals/policies/UPPER/",
        "/api/v1/agents/no-such-agent/",
        "/api/v2/agents/",
        "/api/v1/agents",
    ],
)
def test_it_answers_404_with_the_json_error_for_unknown_paths_and_ids(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["status"], error["code"], error["fields"]) == (404, "not_found", {})


def test_a_path_without_its_slash_names_the_one_with_it(client: Any) -> None:
    assert "'/api/v1/agents/'" in client.get("/api/v1/agents").json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "unknown", "known"),
    [
        ("/api/v1/agents/", "search", "q"),
        ("/api/v1/tools/", "serach", "owner"),
        ("/api/v1/teams/", "name", "q"),
        ("/api/v1/grants/", "agents", "agent"),
        ("/api/v1/models/", "provider", "page"),
        ("/api/v1/locations/", "target", "page_size"),
        ("/api/v1/tokens/", "scope", "page"),
        ("/api/v1/approvals/requests/", "status", "state"),
        ("/api/v1/approvals/policies/", "tier", None),
        ("/api/v1/scaffolder/templates/", "q", "page"),
        ("/api/v1/scaffolder/runs/", "template", "page"),
    ],
)
def test_it_refuses_an_unknown_list_parameter_naming_it(
    client: Any, path: str, unknown: str, known: str | None
) -> None:
    refused = client.get(path, {unknown: "x"})
    assert refused.status_code == 400, refused.content
    fields = refused.json()["error"]["fields"]
    assert list(fields) == [unknown]
    if known is not None:
        assert known in fields[unknown][0]
        assert "is not a parameter" not in client.get(path, {known: "1"}).content.decode()


def test_a_detail_ignores_nothing_it_does_not_read(client: Any, make_team: Any) -> None:
    make_team("payments")
    assert client.get("/api/v1/teams/payments/", {"anything": "x"}).status_code == 200
