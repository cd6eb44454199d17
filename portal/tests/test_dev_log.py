"""`make run`'s log stays readable: one INFO line per e-mail, no kombu hostname warnings, links on the real port."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.mail import send_mail

ROOT = Path(__file__).resolve().parents[2]


def test_it_logs_one_info_line_per_email_and_keeps_the_message_in_a_file(
    settings: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings.EMAIL_BACKEND = "portal.mail.LogEmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path / "mail"
    body = "A long body\\n" * 40
    with caplog.at_level(logging.INFO, logger="portal.mail"):
        sent = send_mail("Review requested: github-mcp", body, "portal@example.com", ["sam@example.com"])
    assert sent == 1
    records = [r for r in caplog.records if r.name == "portal.mail"]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    line = records[0].getMessage()
    assert line.startswith("e-mail to sam@example.com: Review requested: github-mcp (")
    assert "\n" not in line and "A long body" not in line
    (saved,) = (tmp_path / "mail").glob("*.eml")
    assert "A long body" in saved.read_text()
    assert "Subject: Review requested: github-mcp" in saved.read_text()


def test_the_development_broker_never_warns_about_a_missing_hostname(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "CELERY_", "PYTEST_", "DJANGO_"))}
    env.update(PORTAL_MODE="development", PORTAL_DOTENV="", PORTAL_VAR_DIR=str(tmp_path))
    code = (
        "import logging, django; logging.basicConfig(level=logging.INFO); django.setup()\n"
        "from portal.celery import app\n"
        "for _ in range(3):\n"
        "    with app.connection_for_write() as connection:\n"
        "        connection.info(); connection.clone().info()\n"
        "print(app.conf.broker_url)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env | {"DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("filesystem://")
    assert "No hostname was supplied" not in result.stderr


def test_make_run_gives_site_url_the_port_it_serves_on() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        [make, "-n", "-C", str(ROOT), "run", "PORT=18765"], capture_output=True, text=True, timeout=60, check=True
    )
    serve = [line for line in result.stdout.splitlines() if "honcho" in line]
    assert serve and "SITE_URL=http://127.0.0.1:18765" in serve[0]
    assert "-p 18765" in serve[0]
