from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from portal.models import ApiToken, AuditEvent
from portal.roles import PLATFORM_ADMIN
from portal.tokens import (
    TOKEN_PATTERN,
    TokenError,
    TokenValidationError,
    token_authenticate,
    token_issue,
    token_revoke,
)

pytestmark = pytest.mark.django_db


def test_it_stores_only_a_digest_of_the_secret(make_user: Any) -> None:
    user = make_user("alice")
    issued = token_issue(issued_by=user, name="ci", scopes=["read"], expires_in_days=30)

    stored = ApiToken.objects.get(pk=issued.token.pk)
    assert stored.key_digest == hashlib.sha256(issued.secret.encode()).hexdigest()
    # The random part: everything after "ap_<prefix>_" (it may itself contain "_", so not split on it).
    match = TOKEN_PATTERN.match(issued.secret)
    assert match is not None
    secret_part = match["secret"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM portal_apitoken")
        rows = cursor.fetchall()
    assert secret_part not in repr(rows)
    assert secret_part not in repr(list(AuditEvent.objects.values()))


def test_it_authenticates_the_exact_secret_only(make_user: Any) -> None:
    issued = token_issue(issued_by=make_user("alice"), name="ci", scopes=["read"], expires_in_days=30)

    assert token_authenticate(issued.secret).pk == issued.token.pk
    tampered = issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")
    with pytest.raises(TokenError, match="Unknown token"):
        token_authenticate(tampered)
    with pytest.raises(TokenError, match="Malformed"):
        token_authenticate("not-a-token")


def test_it_refuses_unknown_scopes_and_out_of_range_expiry(make_user: Any) -> None:
    user = make_user("alice")
    with pytest.raises(TokenValidationError) as excinfo:
        token_issue(issued_by=user, name="x", scopes=["read", "root"], expires_in_days=30)
    assert excinfo.value.field == "scopes"
    assert "root" in excinfo.value.message
    with pytest.raises(TokenValidationError) as excinfo:
        token_issue(issued_by=user, name="x", scopes=["read"], expires_in_days=400)
    assert excinfo.value.field == "expires_in_days"


def test_it_lets_only_platform_admins_issue_admin_tokens(make_user: Any) -> None:
    with pytest.raises(TokenValidationError, match="admin scope"):
        token_issue(issued_by=make_user("alice"), name="x", scopes=["admin"], expires_in_days=30)
    admin = make_user("ada", roles=[PLATFORM_ADMIN])
    assert token_issue(issued_by=admin, name="x", scopes=["admin"], expires_in_days=30).token.scopes == ["admin"]


def test_api_read_token_reads_but_cannot_write(token_client: Any) -> None:
    client = token_client(scopes=["read"])

    assert client.get("/api/v1/me/").json()["authenticated_by"] == "token"
    response = client.post("/api/v1/tokens/", {"name": "x", "scopes": ["read"]}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "'write' scope" in response.json()["error"]["message"]


def test_api_write_token_can_write(token_client: Any) -> None:
    client = token_client(scopes=["read", "write"])
    response = client.post(
        "/api/v1/tokens/", {"name": "deploy", "scopes": ["read"], "expires_in_days": 7}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("ap_")
    listing = client.get("/api/v1/tokens/").json()
    assert all("token" not in row for row in listing["results"])
    assert {row["name"] for row in listing["results"]} == {"test", "deploy"}


def test_api_expired_token_gets_401_with_json(token_client: Any) -> None:
    client = token_client(scopes=["read"])
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This token has expired."
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_api_revoked_token_gets_401(token_client: Any) -> None:
    client = token_client(scopes=["read"])
    token_revoke(token=client.token, revoked_by=client.user)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    assert AuditEvent.objects.filter(action="token.revoked", object_id=str(client.token.pk)).count() == 1


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer ap_short_x", "Bearer a b", "Token ap_000000000000_" + "x" * 43]
)
def test_api_malformed_or_unknown_token_gets_401(api_client: Any, db: None, header: str) -> None:
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"status", "code", "message", "fields"}


def test_api_without_credentials_gets_401(api_client: Any, db: None) -> None:
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_api_revoke_endpoint_revokes_and_cannot_touch_other_peoples_tokens(token_client: Any, make_user: Any) -> None:
    client = token_client(scopes=["read", "write"])
    other = token_issue(issued_by=make_user("mallory"), name="theirs", scopes=["read"], expires_in_days=5)
    assert client.post(f"/api/v1/tokens/{other.token.pk}/revoke/").status_code == 404
    mine = token_issue(issued_by=client.user, name="mine", scopes=["read"], expires_in_days=5)
    response = client.post(f"/api/v1/tokens/{mine.token.pk}/revoke/")
    assert response.status_code == 200
    assert response.json()["state"] == "revoked"


def test_tokens_page_shows_the_secret_once(client: Any, make_user: Any) -> None:
    client.force_login(make_user("alice"))
    response = client.post("/tokens/", {"name": "laptop", "scopes": ["read"], "expires_in_days": 30})
    secret = response.context["new_secret"]
    assert secret.startswith("ap_")
    assert secret in response.content.decode()
    assert secret not in client.get("/tokens/").content.decode()
