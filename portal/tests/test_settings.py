"""Production start-up: missing or invalid settings stop it with the setting's name; a complete set is deploy-clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_PRODUCTION_ENV = {
    "PORTAL_MODE": "production",
    "SECRET_KEY": "k" * 20 + "Zq8#xP!vT3rW6yN1mB4cL7dF0gH2jK5s",
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
    "AUDIT_SIGNING_KEY": "a" * 8 + "Vb3#Lq9!Tz6pWm2Rk7Nc4Xs1",
}


def _run(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTAL_", "DATABASE_", "CELERY_", "SECRET_", "PYTEST_", "DJANGO_ALLOW"))
    }
    # A developer's .env in the checkout must not answer for a setting these tests leave out on purpose.
    env.update({"PORTAL_DOTENV": ""} | env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("SECRET_KEY", "SECRET_KEY is required in production mode"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS is required in production mode"),
        ("DATABASE_URL", "DATABASE_URL is required in production mode"),
        ("CELERY_BROKER_URL", "CELERY_BROKER_URL is required in production mode"),
        ("AUDIT_SIGNING_KEY", "AUDIT_SIGNING_KEY is required in production mode"),
    ],
)
def test_a_missing_production_setting_stops_start_up_naming_it(missing: str, expected: str) -> None:
    env = {key: value for key, value in GOOD_PRODUCTION_ENV.items() if key != missing}
    result = _run(env, "check")
    assert result.returncode != 0
    assert expected in result.stderr
    assert result.stderr.splitlines() == [f"manage.py: configuration error: {result.stderr.split(': ', 2)[2].strip()}"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SECRET_KEY", "short", "SECRET_KEY must be a random string of at least 50 characters"),
        ("DEBUG", "maybe", "DEBUG must be a boolean"),
        ("DEBUG", "true", "DEBUG must be off in production mode"),
        ("EMAIL_PORT", "twenty-five", "EMAIL_PORT must be an integer"),
        ("CSRF_TRUSTED_ORIGINS", "portal.example.com", "CSRF_TRUSTED_ORIGINS entries must start with http"),
        ("OIDC_ISSUER", "http://idp.example.com", "OIDC_ISSUER must be an https:// URL in production mode"),
        ("OIDC_ISSUER", "https://idp.example.com", "OIDC_CLIENT_ID is required when OIDC_ISSUER is set"),
        ("LOCAL_LOGIN_ENABLED", "false", "LOCAL_LOGIN_ENABLED=false needs single sign-on: set OIDC_ISSUER"),
        ("OIDC_GROUP_MAP", '{"g": ["role:god"]}', "OIDC_GROUP_MAP['g'] has 'role:god'"),
    ],
)
def test_an_invalid_production_setting_stops_start_up_naming_it(name: str, value: str, expected: str) -> None:
    result = _run({**GOOD_PRODUCTION_ENV, name: value}, "check")
    assert result.returncode != 0
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"
    key_file.write_text(GOOD_PRODUCTION_ENV["SECRET_KEY"] + "\n")
    env = {key: value for key, value in GOOD_PRODUCTION_ENV.items() if key != "SECRET_KEY"} | {
        "SECRET_KEY_FILE": str(key_file)
    }
    result = _run(env, "check")
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_in_production_mode() -> None:
    result = _run(GOOD_PRODUCTION_ENV, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_postgresql_prepares_a_statement_a_connection_repeats() -> None:
    """Server-side parameters and prepare_threshold: the sixth run of a statement uses a prepared plan."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are a PostgreSQL setting")
    user_model = get_user_model()
    for attempt in range(6):
        list(user_model.objects.filter(username=f"nobody-{attempt}"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(user_model._meta.db_table in statement for statement in prepared), prepared


def test_prepared_statements_can_be_turned_off_for_a_transaction_pooler() -> None:
    script = "from django.conf import settings; print(sorted(settings.DATABASES['default']['OPTIONS']))"
    env = {"PORTAL_MODE": "test", "DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal"}
    on = _run(env, "shell", "-c", script)
    off = _run({**env, "DATABASE_PREPARED_STATEMENTS": "false"}, "shell", "-c", script)
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert "'prepare_threshold'" in on.stdout and "'server_side_binding'" in on.stdout
    assert "prepare_threshold" not in off.stdout and "server_side_binding" not in off.stdout
