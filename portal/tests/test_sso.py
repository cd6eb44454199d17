"""Single sign-on against a real OpenID Connect provider: panva/node-oidc-provider (OpenID Certified), started on
loopback by the test (tools/oidc-test-provider), driven through the real redirects with `requests`.

Needs Node.js and npm; skipped without them unless the CI environment variable is set.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory

from catalog.models import TeamMembership
from catalog.teams import team_create
from portal.models import AuditEvent, OidcIdentity
from portal.roles import BUSINESS_OWNER, PLATFORM_ADMIN, ROLE_GROUPS, SECURITY_LEAD, SECURITY_REVIEWER
from portal.settings import OIDC_ROLE_NAMES, parse_group_map
from portal.sso import rights_for

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "oidc-test-provider"
CLIENT_ID, CLIENT_SECRET = "agent-portal", "s3cret-for-tests-only"
GROUP_MAP = {
    "sec": ["role:security-reviewer"],
    "sec-leads": ["role:security-lead", "role:security-reviewer"],
    "platform-admins": ["role:platform-admin"],
    "payments-devs": ["team:payments"],
    "payments-leads": ["team:payments:maintainer"],
    "data-team": ["team:data-science", "role:data-owner"],
}
PORTAL_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "portal.sso.PortalOidcBackend",
    "django.contrib.auth.backends.ModelBackend",
    "catalog.permissions.OwningTeamBackend",
    "guardian.backends.ObjectPermissionBackend",
]


def _require(program: str) -> str:
    path = shutil.which(program)
    if path:
        return path
    reason = f"{program} not found on PATH: the single sign-on tests need Node.js 20+ and npm"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is not skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the provider's pinned npm packages installed once (node_modules is the cache)."""
    node, npm = _require("node"), _require("npm")
    installed, lock = TOOL / "node_modules" / ".package-lock.json", TOOL / "package-lock.json"
    with (Path(tempfile.gettempdir()) / "agent-portal-oidc-test-provider.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            result = subprocess.run(
                [npm, "ci", "--prefix", str(TOOL), "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return node


class Provider:
    def __init__(self, issuer: str, accounts_file: Path) -> None:
        self.issuer = issuer
        self.accounts_file = accounts_file

    def set_account(self, login: str, *, groups: list[str], email: str = "") -> None:
        accounts = json.loads(self.accounts_file.read_text()) if self.accounts_file.exists() else {}
        accounts[login] = {"email": email or f"{login}@example.com", "name": f"{login.title()} Sso", "groups": groups}
        self.accounts_file.write_text(json.dumps(accounts))


@pytest.fixture
def start_provider(node: str, live_server: Any, tmp_path: Path) -> Iterator[Callable[..., Provider]]:
    processes: list[subprocess.Popen[str]] = []

    def start(*, tamper_jwks: bool = False) -> Provider:
        accounts = tmp_path / f"accounts-{len(processes)}.json"
        accounts.write_text("{}")
        config = tmp_path / f"provider-{len(processes)}.json"
        client = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"{live_server.url}/oidc/callback/"],
        }
        config.write_text(
            json.dumps({"port": 0, "clients": [client], "accounts_file": str(accounts), "tamper_jwks": tamper_jwks})
        )
        process = subprocess.Popen(
            [node, str(TOOL / "provider.mjs"), str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the provider did not start:\n{process.stderr.read() if process.stderr else ''}"
        return Provider(json.loads(line)["issuer"], accounts)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def sso_settings(settings: Any) -> Callable[[Provider], None]:
    def configure(provider: Provider, *, issuer: str | None = None) -> None:
        settings.OIDC_ENABLED = True
        settings.OIDC_ISSUER = issuer or provider.issuer
        settings.OIDC_CLIENT_ID = settings.OIDC_RP_CLIENT_ID = CLIENT_ID
        settings.OIDC_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
        settings.OIDC_GROUP_MAP = GROUP_MAP
        settings.AUTHENTICATION_BACKENDS = PORTAL_BACKENDS

    return configure


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append({"action": values.get("action"), "fields": {}})
        elif tag in {"input", "button"} and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value") or ""


def _submit(session: requests.Session, page: requests.Response, **fields: str) -> requests.Response:
    parser = _Forms()
    parser.feed(page.text)
    assert parser.forms, f"no form on {page.url}:\n{page.text[:2000]}"
    form = parser.forms[0]
    return session.post(urljoin(page.url, form["action"]), data={**form["fields"], **fields}, timeout=30)


def sso_login(portal_url: str, login: str) -> tuple[requests.Session, requests.Response]:
    """Click "Sign in", sign in at the provider, consent, come back: every hop a real HTTP redirect."""
    session = requests.Session()
    page = session.get(f"{portal_url}/oidc/authenticate/?next=/catalog/", timeout=30)
    if "/interaction/" not in page.url:
        return session, page  # refused before reaching the provider
    page = _submit(session, page, login=login, password="any-password")
    if "/interaction/" in page.url and 'name="prompt" value="consent"' in page.text:
        page = _submit(session, page)
    return session, page


def _roles(username: str) -> set[str]:
    user = get_user_model().objects.get(username=username)
    return set(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True))


def _teams(username: str) -> dict[str, str]:
    return dict(TeamMembership.objects.filter(user__username=username).values_list("team__name", "role"))


@pytest.mark.django_db(transaction=True)
def test_it_signs_in_through_the_provider_and_maps_groups_to_roles_and_teams(
    live_server: Any, start_provider: Callable[..., Provider], sso_settings: Callable[..., None]
) -> None:
    team_create(name="payments")
    team_create(name="data-science")
    provider = start_provider()
    sso_settings(provider)
    provider.set_account("carol", groups=["sec-leads", "payments-leads", "data-team", "unmapped-group"])

    session, page = sso_login(live_server.url, "carol")

    assert page.status_code == 200
    assert page.url == f"{live_server.url}/catalog/", page.url
    identity = OidcIdentity.objects.get(subject="carol")
    assert identity.issuer == provider.issuer
    user = identity.user
    assert (user.username, user.email, user.first_name) == ("carol", "carol@example.com", "Carol")
    assert not user.has_usable_password()
    assert _roles("carol") == {SECURITY_LEAD, SECURITY_REVIEWER, "data-owner"}
    assert _teams("carol") == {"payments": "maintainer", "data-science": "member"}
    assert session.get(f"{live_server.url}/audit/", timeout=30).status_code == 200  # a reviewer reads the trail
    event = AuditEvent.objects.filter(action="portal.sso.rights_synced").latest("sequence")
    assert event.changes["teams"]["payments"] == {"before": None, "after": "maintainer"}


@pytest.mark.django_db(transaction=True)
def test_a_group_removed_at_the_provider_loses_its_rights_at_the_next_sign_in(
    live_server: Any, start_provider: Callable[..., Provider], sso_settings: Callable[..., None]
) -> None:
    team_create(name="payments")
    provider = start_provider()
    sso_settings(provider)
    provider.set_account("dave", groups=["platform-admins", "payments-leads", "sec"])
    _, page = sso_login(live_server.url, "dave")
    assert page.url == f"{live_server.url}/catalog/"
    assert _roles("dave") == {PLATFORM_ADMIN, SECURITY_REVIEWER}
    assert _teams("dave") == {"payments": "maintainer"}
    # An admin also gave dave a role the map does not name: that one is not the provider's to take.
    get_user_model().objects.get(username="dave").groups.add(Group.objects.get_or_create(name=BUSINESS_OWNER)[0])

    provider.set_account("dave", groups=["payments-devs"])
    session, page = sso_login(live_server.url, "dave")

    assert page.url == f"{live_server.url}/catalog/"
    assert _roles("dave") == {BUSINESS_OWNER}
    assert _teams("dave") == {"payments": "member"}
    assert session.get(f"{live_server.url}/audit/", timeout=30).status_code == 403
    assert OidcIdentity.objects.filter(subject="dave").count() == 1, "the same person, not a second account"

    provider.set_account("dave", groups=[])
    sso_login(live_server.url, "dave")
    assert _teams("dave") == {}


@pytest.mark.django_db(transaction=True)
def test_an_id_token_whose_signature_does_not_verify_is_refused(
    live_server: Any, start_provider: Callable[..., Provider], sso_settings: Callable[..., None]
) -> None:
    provider = start_provider(tamper_jwks=True)
    sso_settings(provider)
    provider.set_account("mallory", groups=["platform-admins"])

    session, page = sso_login(live_server.url, "mallory")

    assert page.url == f"{live_server.url}/login/"
    assert "Single sign-on failed" in page.text
    assert "Signature verification failed" in page.text
    assert not OidcIdentity.objects.exists()
    assert not get_user_model().objects.filter(username="mallory").exists()
    assert session.get(f"{live_server.url}/", timeout=30).url.startswith(f"{live_server.url}/login/")


@pytest.mark.django_db(transaction=True)
def test_a_provider_that_is_not_the_configured_issuer_is_refused(
    live_server: Any, start_provider: Callable[..., Provider], sso_settings: Callable[..., None]
) -> None:
    provider = start_provider()
    # Same server, another name: its discovery document names http://127.0.0.1:<port>, not what we trust.
    sso_settings(provider, issuer=provider.issuer.replace("127.0.0.1", "localhost"))
    provider.set_account("mallory", groups=["platform-admins"])

    _, page = sso_login(live_server.url, "mallory")

    assert page.url == f"{live_server.url}/login/"
    assert "Single sign-on is unavailable" in page.text
    assert "not the configured" in page.text
    assert not get_user_model().objects.filter(username="mallory").exists()


@pytest.mark.django_db
def test_password_login_can_be_switched_off(settings: Any, client: Client, make_user: Any) -> None:
    make_user("erin", password="erin-password-1")
    settings.OIDC_ENABLED = True
    settings.LOCAL_LOGIN_ENABLED = False
    settings.AUTHENTICATION_BACKENDS = [b for b in PORTAL_BACKENDS if not b.endswith("ModelBackend")]

    page = client.get("/login/")
    assert b"Sign in with single sign-on" in page.content
    assert b'name="password"' not in page.content
    response = client.post("/login/", {"username": "erin", "password": "erin-password-1"})
    assert response.status_code == 403
    assert authenticate(RequestFactory().post("/login/"), username="erin", password="erin-password-1") is None
    assert client.get("/").status_code == 302


def test_the_group_map_setting_is_checked_naming_the_bad_entry() -> None:
    assert parse_group_map(json.dumps(GROUP_MAP)) == GROUP_MAP
    with pytest.raises(ImproperlyConfigured, match=r"OIDC_GROUP_MAP\['sec'\] has 'role:root'"):
        parse_group_map('{"sec": ["role:root"]}')
    with pytest.raises(ImproperlyConfigured, match="must be a JSON object"):
        parse_group_map("[1, 2")
    assert set(OIDC_ROLE_NAMES) == set(ROLE_GROUPS), "settings must know every role portal.roles defines"


def test_maintainer_wins_over_member_for_one_team() -> None:
    rights = rights_for(["payments-devs", "payments-leads", "sec"], GROUP_MAP)
    assert rights.teams == {"payments": "maintainer"}
    assert rights.roles == {SECURITY_REVIEWER}
