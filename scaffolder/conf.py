"""The scaffolder's settings, each read when used (so ``override_settings`` works) with its default."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def _text(name: str, default: str = "") -> str:
    return str(getattr(settings, name, default) or default).strip()


def git_remote_base() -> str:
    """Where the git publisher pushes: ``<base>/<name>.git`` (a folder of bare repositories or a URL)."""
    return _text("SCAFFOLDER_GIT_REMOTE_BASE").rstrip("/")


def github_token() -> str:
    return _text("SCAFFOLDER_GITHUB_TOKEN")


def github_api_url() -> str:
    return _text("SCAFFOLDER_GITHUB_API_URL", "https://api.github.com").rstrip("/")


def github_org() -> str:
    """Create repositories in this organisation; empty means under the token's own user."""
    return _text("SCAFFOLDER_GITHUB_ORG")


def gitlab_token() -> str:
    return _text("SCAFFOLDER_GITLAB_TOKEN")


def gitlab_api_url() -> str:
    return _text("SCAFFOLDER_GITLAB_API_URL", "https://gitlab.com/api/v4").rstrip("/")


def gitlab_namespace_id() -> str:
    """Create projects in this group (numeric id); empty means the token user's namespace."""
    return _text("SCAFFOLDER_GITLAB_NAMESPACE_ID")


def allow_local_git() -> bool:
    """Whether local paths and file:// URLs are accepted from outside settings (template sources, API answers)."""
    return bool(getattr(settings, "SCAFFOLDER_ALLOW_LOCAL_GIT", not getattr(settings, "IS_PRODUCTION", True)))


def work_dir() -> Path:
    configured = getattr(settings, "SCAFFOLDER_WORK_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "scaffolder"


def golden_paths_dir() -> Path:
    configured = getattr(settings, "SCAFFOLDER_GOLDEN_PATHS_DIR", None)
    return Path(configured) if configured else Path(settings.BASE_DIR) / "golden_paths"


def register_builtin_on_migrate() -> bool:
    """Whether migrate records the shipped golden paths. Off under tests by default: each test database starts with
    an empty audit chain, and tests register what they use (the `builtin` fixture)."""
    return bool(getattr(settings, "SCAFFOLDER_REGISTER_BUILTIN_ON_MIGRATE", not getattr(settings, "IS_TEST", False)))
