from __future__ import annotations

from typing import Any

import pytest
from axes.models import AccessAttempt

pytestmark = pytest.mark.django_db


def test_a_wrong_password_and_an_unknown_user_get_the_same_message(client: Any, make_user: Any) -> None:
    make_user("alice")
    wrong_password = client.post("/login/", {"username": "alice", "password": "nope-nope-nope"})
    unknown_user = client.post("/login/", {"username": "nobody", "password": "nope-nope-nope"})
    assert wrong_password.status_code == unknown_user.status_code == 200
    message = "Please enter a correct username and password"
    assert message in wrong_password.content.decode()
    assert message in unknown_user.content.decode()


def test_repeated_failures_are_throttled(client: Any, make_user: Any, settings: Any) -> None:
    make_user("alice")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "alice", "password": "wrong-wrong"})
    locked = client.post("/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.content.decode()
    assert AccessAttempt.objects.filter(username="alice").exists()


def test_pages_need_login(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_dashboard_has_navigation_csp_and_htmx_csrf(client: Any, make_user: Any) -> None:
    client.force_login(make_user("alice"))
    response = client.get("/")
    html = response.content.decode()
    for label in ("Catalog", "Reviews", "Create"):
        assert f">{label}</a>" in html
    assert "vendor/htmx-2.0.11.min.js" in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_audit_page_is_for_reviewers_and_admins(client: Any, make_user: Any) -> None:
    client.force_login(make_user("alice"))
    assert client.get("/audit/").status_code == 403
    client.force_login(make_user("sam", roles=["security-reviewer"]))
    assert client.get("/audit/").status_code == 200


def test_unknown_page_is_a_friendly_404(client: Any, make_user: Any) -> None:
    client.force_login(make_user("alice"))
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.content.decode()


def test_openapi_schema_is_served(client: Any, make_user: Any) -> None:
    client.force_login(make_user("alice"))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert b"/api/v1/tokens/" in response.content


@pytest.mark.django_db(transaction=True)
def test_seed_demo_is_idempotent() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from catalog.models import Team
    from portal.audit import audit_verify_chain

    call_command("seed_demo")
    counts = (get_user_model().objects.count(), Team.objects.count())
    call_command("seed_demo")
    assert (get_user_model().objects.count(), Team.objects.count()) == counts
    assert counts[0] >= 7
    assert audit_verify_chain().ok
