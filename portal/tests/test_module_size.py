"""No module of application code over 900 lines (the CTO's brief): a big module is split along its seams, not
allowed to grow. Tests and migrations are exempt; so is anything git does not track (a scratch file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("portal", "catalog", "approvals", "scaffolder", "runtime", "agents_api")
EXEMPT_DIRS = frozenset({"tests", "migrations"})
MAX_LINES = 900


def application_modules(root: Path) -> list[Path]:
    """The tracked .py files of the apps, outside tests/ and migrations/ (every .py file when git is absent)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", *(f"{app}/*.py" for app in APPS)],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = [root / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        paths = [path for app in APPS for path in (root / app).rglob("*.py")]
    return sorted(path for path in paths if path.is_file() and not EXEMPT_DIRS & set(path.relative_to(root).parts))


def oversized(paths: list[Path], root: Path, limit: int = MAX_LINES) -> list[str]:
    found = []
    for path in paths:
        with path.open("rb") as handle:
            count = sum(1 for _ in handle)
        if count > limit:
            found.append(f"{path.relative_to(root)}: {count} lines")
    return found


def test_it_keeps_every_application_module_under_900_lines() -> None:
    modules = application_modules(ROOT)
    assert any(path.name == "services.py" for path in modules)  # the listing found the apps
    too_big = oversized(modules, ROOT)
    assert not too_big, f"split these along their seams (limit {MAX_LINES} lines): " + "; ".join(too_big)


def test_it_names_a_module_over_the_limit_and_ignores_tests_and_migrations(tmp_path: Path) -> None:
    for relative in ("catalog/big.py", "catalog/tests/test_big.py", "catalog/migrations/0001_big.py"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "catalog/small.py").write_text("x = 1\n" * MAX_LINES)
    modules = application_modules(tmp_path)  # not a git checkout: walks the folders
    assert [path.name for path in modules] == ["big.py", "small.py"]
    assert oversized(modules, tmp_path) == [f"catalog/big.py: {MAX_LINES + 1} lines"]
