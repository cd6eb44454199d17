"""The git command line with a fixed environment: no user or system configuration, no prompts, no hooks.

Commits are reproducible: author, committer and date come from the caller (a run's requester and creation time),
so committing the same files twice gives the same commit id. Credentials never reach argv or a URL: they travel
as an ``http.<origin>/.extraHeader`` through ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``, scoped to one origin,
and are redacted from every message this module produces.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

GIT_TIMEOUT_SECONDS = 120
DEFAULT_BRANCH = "main"
_BASE_CONFIG: tuple[tuple[str, str], ...] = (
    ("commit.gpgsign", "false"),
    ("tag.gpgsign", "false"),
    ("core.hooksPath", os.devnull),
    ("core.autocrlf", "false"),
    ("init.defaultBranch", DEFAULT_BRANCH),
    ("http.followRedirects", "false"),
    ("advice.detachedHead", "false"),
    ("merge.renames", "true"),
    ("diff.renames", "true"),
    # Only the transports people configure on purpose; "ext::" and friends would run commands.
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.http.allow", "always"),
    ("protocol.ssh.allow", "always"),
)


class GitError(Exception):
    """A git command failed; the message is for people and never contains a credential."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


@dataclass(frozen=True)
class GitAuth:
    """An HTTP credential for one origin, sent as a header by git, never written to disk or argv."""

    url: str
    header: str
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def basic(cls, url: str, username: str, token: str) -> GitAuth:
        encoded = base64.b64encode(f"{username}:{token}".encode()).decode()
        return cls(url=url, header=f"Authorization: Basic {encoded}", secrets=(token, encoded))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def is_local(url: str) -> bool:
    return url.startswith(("/", "file://"))


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def git_environment(
    *,
    identity: Identity | None = None,
    when: datetime | None = None,
    auth: GitAuth | None = None,
    allow_local: bool = True,
    config: Sequence[tuple[str, str]] = (),
) -> dict[str, str]:
    entries = [*_BASE_CONFIG, ("protocol.file.allow", "always" if allow_local else "never"), *config]
    if auth is not None:
        entries.append((f"http.{origin_of(auth.url)}.extraHeader", auth.header))
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "LC_ALL": "C",
        "TZ": "UTC",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
        "GIT_CONFIG_COUNT": str(len(entries)),
    }
    for index, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    if identity is not None:
        env |= {
            "GIT_AUTHOR_NAME": identity.name,
            "GIT_AUTHOR_EMAIL": identity.email,
            "GIT_COMMITTER_NAME": identity.name,
            "GIT_COMMITTER_EMAIL": identity.email,
        }
    if when is not None:
        stamp = f"{int(when.timestamp())} +0000"
        env |= {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    return env


def run_git(
    arguments: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str],
    secrets: Iterable[str] = (),
    timeout: float = GIT_TIMEOUT_SECONDS,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    command = ["git", *arguments]
    try:
        result = subprocess.run(
            command, cwd=cwd, env=dict(env), capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {arguments[0]} took longer than {timeout:g} s.") from exc
    if check and result.returncode != 0:
        raise GitError(f"git {arguments[0]} failed: {describe_failure(result, secrets)}")
    return result


def describe_failure(result: subprocess.CompletedProcess[bytes], secrets: Iterable[str] = ()) -> str:
    lines = [line.strip() for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
    message = " ".join(lines[-3:]) or f"exit status {result.returncode}"
    return redact(message, secrets)[:1000]


def commit_all(repo: Path, *, identity: Identity, when: datetime, message: str) -> str:
    """Start a fresh repository in ``repo`` and commit every file in it; returns the commit id.

    Any existing ``.git`` there is discarded first, so committing the same tree again yields the same id.
    """
    env = git_environment(identity=identity, when=when)
    git_dir = repo / ".git"
    if git_dir.is_symlink() or git_dir.is_file():
        raise GitError(f"{git_dir}: not a directory")
    if git_dir.exists():
        shutil.rmtree(git_dir)
    run_git(["init", "--quiet", "--template=", f"--initial-branch={DEFAULT_BRANCH}"], cwd=repo, env=env)
    run_git(["add", "--all"], cwd=repo, env=env)
    run_git(["-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", message], cwd=repo, env=env)
    return head_commit(repo)


def head_commit(repo: Path) -> str:
    result = run_git(["rev-parse", "HEAD"], cwd=repo, env=git_environment())
    return result.stdout.decode().strip()


def archive_zip(repo: Path, *, prefix: str) -> bytes:
    result = run_git(["archive", "--format=zip", f"--prefix={prefix}/", "HEAD"], cwd=repo, env=git_environment())
    return result.stdout


def remote_refs(url: str, *, env: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """Every ref the remote has (empty for an empty repository). Fails when the remote is unreachable."""
    result = run_git(["ls-remote", "--", url], env=env, secrets=secrets, check=False)
    if result.returncode != 0:
        raise GitError(f"cannot read {url}: {describe_failure(result, secrets)}")
    refs: dict[str, str] = {}
    for line in result.stdout.decode(errors="replace").splitlines():
        sha, _, ref = line.partition("\t")
        if ref:
            refs[ref] = sha
    return refs


def push(repo: Path, url: str, *, env: Mapping[str, str], secrets: Iterable[str] = (), branch: str) -> None:
    """Push HEAD to ``branch`` without force: a remote that moved meanwhile refuses instead of being overwritten."""
    run_git(["push", "--quiet", "--", url, f"HEAD:refs/heads/{branch}"], cwd=repo, env=env, secrets=secrets)


def shallow_clone(
    url: str, destination: Path, *, ref: str = "", env: Mapping[str, str], secrets: Iterable[str] = ()
) -> str:
    """Clone one commit of ``ref`` (a branch or tag; the default branch when empty); returns its commit id."""
    arguments = ["clone", "--quiet", "--depth", "1", "--no-tags"]
    if ref:
        arguments += ["--branch", ref]
    run_git([*arguments, "--", url, str(destination)], env=env, secrets=secrets)
    return head_commit(destination)
