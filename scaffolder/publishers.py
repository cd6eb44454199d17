"""Publishers: put a freshly committed repository somewhere people can clone it, never over an existing one.

Each publisher first makes sure the target is new (the git remote is empty; the REST API created the repository
just now) and pushes without force. A retried step finds its own commit already there and succeeds without
pushing again; anything else already there is a refusal, not an overwrite. REST calls go through the SSRF-safe
client; tokens travel in headers only and are redacted from every message.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from portal.net import FetchError, SafeHttpClient, SafeResponse
from scaffolder import conf
from scaffolder.git import DEFAULT_BRANCH, GitAuth, GitError, git_environment, is_local, push, redact, remote_refs

Log = Callable[[str], None]


class PublishError(Exception):
    """Publishing failed; the message says why, for people, without credentials."""


class RepositoryExistsError(PublishError):
    """The target repository already exists (and is not the one this run pushed)."""


@dataclass(frozen=True)
class Published:
    repository_url: str  # where people look at it: a web page, or the remote itself
    clone_url: str
    pushed: bool  # False when a previous attempt had already pushed this very commit


class Publisher(Protocol):
    key: str

    def publish(
        self,
        repo: Path,
        *,
        name: str,
        description: str,
        commit: str,
        state: MutableMapping[str, Any],
        save: Callable[[], None],
        log: Log,
    ) -> Published: ...


def available_publishers() -> list[str]:
    """Publisher keys that are configured, in the order forms offer them ("none" is always possible)."""
    keys = []
    if conf.git_remote_base():
        keys.append("git")
    if conf.github_token():
        keys.append("github")
    if conf.gitlab_token():
        keys.append("gitlab")
    return [*keys, "none"]


def publisher_for(key: str) -> Publisher:
    if key == "git":
        return GitRemotePublisher()
    if key == "github":
        return GitHubPublisher()
    if key == "gitlab":
        return GitLabPublisher()
    raise PublishError(f"unknown publisher {key!r}")


def push_access(publisher: str, clone_url: str) -> tuple[GitAuth | None, bool]:
    """The credential (if any) for pushing to a repository a publisher made, and whether local paths are allowed."""
    if publisher == "git":
        return None, True  # the remote base comes from settings
    if is_local(clone_url):
        return None, conf.allow_local_git()
    if publisher == "github":
        return GitAuth.basic(clone_url, "x-access-token", conf.github_token()), False
    if publisher == "gitlab":
        return GitAuth.basic(clone_url, "oauth2", conf.gitlab_token()), False
    raise PublishError(f"unknown publisher {publisher!r}")


def push_new_repository(
    repo: Path, url: str, *, commit: str, auth: GitAuth | None, allow_local: bool, log: Log
) -> bool:
    """Push to an empty repository. Returns False when it already holds exactly this commit (a retry)."""
    secrets = auth.secrets if auth else ()
    env = git_environment(auth=auth, allow_local=allow_local)
    try:
        refs = remote_refs(url, env=env, secrets=secrets)
    except GitError as exc:
        raise PublishError(str(exc)) from exc
    if refs:
        ours = set(refs) <= {"HEAD", f"refs/heads/{DEFAULT_BRANCH}"} and set(refs.values()) == {commit}
        if ours:
            log(f"{url} already holds commit {commit[:12]}; nothing to push.")
            return False
        raise RepositoryExistsError(
            f"{url} already exists and is not empty ({len(refs)} ref(s)); the portal never overwrites a repository. "
            "Pick another name or remove that repository first."
        )
    log(f"Pushing {commit[:12]} to {url} ({DEFAULT_BRANCH}).")
    try:
        push(repo, url, env=env, secrets=secrets, branch=DEFAULT_BRANCH)
    except GitError as exc:
        raise PublishError(str(exc)) from exc
    return True


class GitRemotePublisher:
    """Push to ``SCAFFOLDER_GIT_REMOTE_BASE/<name>.git``: a folder of bare repositories or any URL git reaches.

    The repository must exist and be empty (creating repositories is the REST publishers' job)."""

    key = "git"

    def publish(
        self,
        repo: Path,
        *,
        name: str,
        description: str,
        commit: str,
        state: MutableMapping[str, Any],
        save: Callable[[], None],
        log: Log,
    ) -> Published:
        base = conf.git_remote_base()
        if not base:
            raise PublishError("the git publisher is not configured (SCAFFOLDER_GIT_REMOTE_BASE is empty).")
        url = f"{base}/{name}.git"
        # The base comes from settings, not from users, so a local folder is fine here.
        pushed = push_new_repository(repo, url, commit=commit, auth=None, allow_local=True, log=log)
        return Published(repository_url=url, clone_url=url, pushed=pushed)


def _check_clone_url(url: Any, answered_by: str) -> str:
    """A clone URL from an API answer: http(s) through the SSRF checks, local paths only when allowed."""
    if not isinstance(url, str) or not url:
        raise PublishError(f"{answered_by} did not say where to push (no clone URL in its answer).")
    if is_local(url):
        if not conf.allow_local_git():
            raise PublishError(f"{answered_by} answered with a local clone URL, which is not allowed here.")
        return url
    if urlsplit(url).scheme not in ("https", "http"):
        raise PublishError(f"{answered_by} answered with an unsupported clone URL {url[:100]!r}.")
    try:
        SafeHttpClient().check_url(url)
    except FetchError as exc:
        raise PublishError(f"{answered_by} answered with a clone URL the portal may not reach: {exc}") from exc
    return url


def _api_error(service: str, response: SafeResponse, secrets: tuple[str, ...]) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    message = ""
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error") or "")
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            message += " " + "; ".join(str(e.get("message", e) if isinstance(e, dict) else e) for e in errors[:5])
    return redact(f"{service} answered HTTP {response.status}: {message.strip() or 'no details'}", secrets)[:500]


def _mentions_taken(response: SafeResponse) -> bool:
    text = response.content.decode(errors="replace").lower()
    return "already exists" in text or "has already been taken" in text


def _request(
    service: str, url: str, *, payload: dict[str, Any], headers: dict[str, str], secrets: tuple[str, ...]
) -> SafeResponse:
    try:
        return SafeHttpClient().post(url, json=payload, headers=headers)
    except FetchError as exc:
        raise PublishError(redact(f"{service} could not be reached: {exc}", secrets)) from exc


class GitHubPublisher:
    """``POST /orgs/{org}/repos`` (or ``/user/repos``), then push over HTTPS with the token as a header."""

    key = "github"

    def publish(
        self,
        repo: Path,
        *,
        name: str,
        description: str,
        commit: str,
        state: MutableMapping[str, Any],
        save: Callable[[], None],
        log: Log,
    ) -> Published:
        token = conf.github_token()
        if not token:
            raise PublishError("the GitHub publisher is not configured (SCAFFOLDER_GITHUB_TOKEN is empty).")
        secrets = (token,)
        if "clone_url" not in state:
            org = conf.github_org()
            path = f"/orgs/{quote(org, safe='')}/repos" if org else "/user/repos"
            log(f"Creating the GitHub repository {org + '/' if org else ''}{name}.")
            response = _request(
                "GitHub",
                conf.github_api_url() + path,
                payload={"name": name, "description": description[:350], "private": True, "auto_init": False},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                },
                secrets=secrets,
            )
            if response.status == 422 and _mentions_taken(response):
                raise RepositoryExistsError(
                    f"GitHub already has a repository named {name!r} there; the portal never overwrites a repository."
                )
            if response.status != 201:
                raise PublishError(_api_error("GitHub", response, secrets))
            body = response.json()
            # Remember at once: a retry must not try to create it again (GitHub would say it exists).
            state["clone_url"] = _check_clone_url(body.get("clone_url"), "GitHub")
            state["web_url"] = str(body.get("html_url") or state["clone_url"])
            save()
        clone_url = str(state["clone_url"])
        auth, allow_local = push_access(self.key, clone_url)
        pushed = push_new_repository(repo, clone_url, commit=commit, auth=auth, allow_local=allow_local, log=log)
        return Published(repository_url=str(state["web_url"]), clone_url=clone_url, pushed=pushed)


class GitLabPublisher:
    """``POST /projects`` on the GitLab REST API (v4), then push over HTTPS with the token as a header."""

    key = "gitlab"

    def publish(
        self,
        repo: Path,
        *,
        name: str,
        description: str,
        commit: str,
        state: MutableMapping[str, Any],
        save: Callable[[], None],
        log: Log,
    ) -> Published:
        token = conf.gitlab_token()
        if not token:
            raise PublishError("the GitLab publisher is not configured (SCAFFOLDER_GITLAB_TOKEN is empty).")
        secrets = (token,)
        if "clone_url" not in state:
            payload: dict[str, Any] = {
                "name": name,
                "path": name,
                "description": description[:2000],
                "visibility": "private",
                "initialize_with_readme": False,
            }
            if namespace := conf.gitlab_namespace_id():
                payload["namespace_id"] = namespace
            log(f"Creating the GitLab project {name}.")
            response = _request(
                "GitLab",
                conf.gitlab_api_url() + "/projects",
                payload=payload,
                headers={"PRIVATE-TOKEN": token},
                secrets=secrets,
            )
            if response.status in (400, 409, 422) and _mentions_taken(response):
                raise RepositoryExistsError(
                    f"GitLab already has a project named {name!r} there; the portal never overwrites a repository."
                )
            if response.status != 201:
                raise PublishError(_api_error("GitLab", response, secrets))
            body = response.json()
            state["clone_url"] = _check_clone_url(body.get("http_url_to_repo"), "GitLab")
            state["web_url"] = str(body.get("web_url") or state["clone_url"])
            save()
        clone_url = str(state["clone_url"])
        auth, allow_local = push_access(self.key, clone_url)
        pushed = push_new_repository(repo, clone_url, commit=commit, auth=auth, allow_local=allow_local, log=log)
        return Published(repository_url=str(state["web_url"]), clone_url=clone_url, pushed=pushed)
