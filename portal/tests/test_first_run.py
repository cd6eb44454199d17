"""A developer checkout works after `make install` (a .env the settings read); deployments stay strict.

Every case runs the real entry points (manage.py, gunicorn, make) in subprocesses with a scrubbed environment.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_KEY = "dotenv-" + "x9Qm2vL7pR4tW8yB1nC6" * 3
SHOW = "from django.conf import settings as s; print(s.PORTAL_MODE, s.SECRET_KEY, s.DEBUG)"


def _clean_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTAL_", "DATABASE_", "CELERY_", "SECRET_", "PYTEST_", "DJANGO_", "CI"))
        and key not in {"ALLOWED_HOSTS", "DEBUG", "EMAIL_BACKEND"}
    }
    env.update(overrides)
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def dotenv(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(f"# made by a test\nPORTAL_MODE=development\nSECRET_KEY='{DEV_KEY}'\n\n")
    return path


def test_it_reads_the_checkouts_dotenv_when_nothing_is_exported(dotenv: Path, tmp_path: Path) -> None:
    result = _manage(
        _clean_env(PORTAL_DOTENV=str(dotenv), PORTAL_VAR_DIR=str(tmp_path)), "shell", "--no-imports", "-c", SHOW
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["development", DEV_KEY, "True"]


def test_the_environment_wins_over_the_dotenv(dotenv: Path, tmp_path: Path) -> None:
    env = _clean_env(PORTAL_DOTENV=str(dotenv), PORTAL_VAR_DIR=str(tmp_path), DEBUG="false", SECRET_KEY="from-env")
    result = _manage(env, "shell", "--no-imports", "-c", SHOW)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["development", "from-env", "False"]


@pytest.mark.parametrize(
    "context",
    [{"PORTAL_MODE": "test"}, {"CI": "true", "PORTAL_MODE": "test"}, {"CI": "true"}, {"PYTEST_VERSION": "8"}],
    ids=["test-mode", "ci-test-mode", "ci", "pytest"],
)
def test_tests_and_ci_never_read_a_stray_dotenv(context: dict[str, str], dotenv: Path, tmp_path: Path) -> None:
    dotenv.write_text(dotenv.read_text() + "EMAIL_BACKEND=smtp\n")
    env = _clean_env(PORTAL_DOTENV=str(dotenv), PORTAL_VAR_DIR=str(tmp_path), **context)
    result = _manage(env, "shell", "--no-imports", "-c", "from django.conf import settings as s; print(s.SECRET_KEY)")
    if context == {"CI": "true"}:
        # CI without a mode is production: it must say what is missing, not quietly take the developer's key.
        assert result.returncode == 1
        assert "SECRET_KEY is required in production mode" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert DEV_KEY not in result.stdout


def test_a_broken_dotenv_line_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORTAL_MODE=development\nthis is not a setting\n")
    result = _manage(_clean_env(PORTAL_DOTENV=str(dotenv)), "check")
    assert result.returncode == 1
    assert result.stderr.strip() == f"manage.py: configuration error: {dotenv}:2 is not a NAME=value line."


def test_production_without_settings_is_one_line_on_manage_py(tmp_path: Path) -> None:
    result = _manage(_clean_env(PORTAL_DOTENV=""), "migrate")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("manage.py: configuration error: SECRET_KEY is required in production mode")
    assert "Traceback" not in result.stderr


def test_production_without_settings_is_one_line_on_gunicorn() -> None:
    env = _clean_env(PORTAL_DOTENV="", PORT="0", SECRET_KEY="k" * 20 + "Zq8#xP!vT3rW6yN1mB4cL7dF0gH2jK5s")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "[INFO]" not in line]
    assert errors == [
        "gunicorn: configuration error: ALLOWED_HOSTS is required in production mode: a comma-separated list of "
        "host names."
    ]


def test_make_install_writes_a_private_dotenv_once_and_git_ignores_it(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    run = [make, "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), ".env", f"PYTHON={sys.executable}"]
    subprocess.run(run, check=True, capture_output=True, timeout=60)
    written = (tmp_path / ".env").read_text()
    assert "PORTAL_MODE=development\n" in written
    key = re.search(r"^SECRET_KEY=(\S+)$", written, re.MULTILINE)
    assert key is not None and len(key.group(1)) >= 50
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    subprocess.run(run, check=True, capture_output=True, timeout=60)
    assert (tmp_path / ".env").read_text() == written, "a second make install must keep the developer's key"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, timeout=30, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_the_readmes_manage_py_commands_run_as_printed(dotenv: Path, tmp_path: Path) -> None:
    """Each `.venv/bin/python manage.py ...` line of the README, in a development checkout with a fresh var/."""
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\.venv/bin/python manage\.py (.+?)(?:\s+#.*)?$", readme, re.MULTILINE)
    assert len(commands) >= 5, commands
    env = _clean_env(PORTAL_DOTENV=str(dotenv), PORTAL_VAR_DIR=str(tmp_path / "var"))
    for command in commands:
        args = shlex.split(command)
        if "--output" in args:  # a new folder each run, not one in the checkout
            args[args.index("--output") + 1] = str(tmp_path / "out")
        result = _manage(env, *args)
        assert result.returncode == 0, f"manage.py {command}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
