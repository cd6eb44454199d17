"""Golden-path templates and their recorded versions: from the shipped folder (golden_paths/) or a git repository.

A version's files are stored in the database and never change once recorded: changed files become a new version, so
any repository generated earlier can still be re-rendered and updated.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from portal.audit import audit_record
from portal.roles import user_is_platform_admin
from portal.types import User
from scaffolder import conf
from scaffolder.errors import ScaffoldError, ScaffoldPermissionError
from scaffolder.git import GitError, git_environment, shallow_clone
from scaffolder.golden_path import FILES_DIRNAME, IGNORED_TEMPLATE_NAMES, MANIFEST_FILENAME, GoldenPath, ScaffolderError
from scaffolder.manifest import load_golden_path
from scaffolder.models import GoldenPathTemplate, TemplateVersion


def template_folder_files(root: Path) -> dict[str, bytes]:
    """``template.yaml`` and everything under ``files/`` (already vetted by ``load_golden_path``: no symlinks)."""
    files = {MANIFEST_FILENAME: (root / MANIFEST_FILENAME).read_bytes()}
    for folder, directories, names in os.walk(root / FILES_DIRNAME, followlinks=False):
        directories[:] = sorted(d for d in directories if d not in IGNORED_TEMPLATE_NAMES)
        for name in sorted(names):
            if name in IGNORED_TEMPLATE_NAMES:
                continue
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                raise ScaffoldError({"template": [f"{path.relative_to(root)}: not a regular file."]})
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return dict(sorted(files.items()))


def content_hash(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha256(files[path]).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class RegisteredVersion:
    version: TemplateVersion
    outcome: str  # created or unchanged


def _new_version_label(template: GoldenPathTemplate, version: str, git_commit: str, digest: str) -> str:
    """The manifest's version, or, when that label already names other content, the version with the content hash
    as semver build metadata (``1.0.0+3f2a9c1b7d4e``): a version's files never change once recorded, so
    repositories generated from them can still be updated."""
    if not TemplateVersion.objects.filter(template=template, version=version, git_commit=git_commit).exists():
        return version
    return f"{version}{'.' if '+' in version else '+'}{digest[:12]}"


@transaction.atomic
def template_register(
    *,
    golden_path: GoldenPath,
    source: str = GoldenPathTemplate.Source.BUILTIN,
    builtin_folder: str = "",
    git_url: str = "",
    git_ref: str = "",
    git_path: str = "",
    git_commit: str = "",
    actor: User | None = None,
) -> RegisteredVersion:
    """Record a loaded golden path as the template's latest version. Idempotent per content: the same files are the
    same version; changed files become a new version even when the manifest's version was not bumped."""
    files = template_folder_files(golden_path.root)
    digest = content_hash(files)
    template = GoldenPathTemplate.objects.select_for_update().filter(name=golden_path.name).first()
    if template is None:
        template = GoldenPathTemplate(name=golden_path.name, registered_by_id=actor.pk if actor else None)
    elif (template.source, template.builtin_folder, template.git_url, template.git_path) != (
        source,
        builtin_folder,
        git_url,
        git_path,
    ):
        where = template.builtin_folder or f"{template.git_url} {template.git_path}".strip()
        raise ScaffoldError({"name": [f"a template called {golden_path.name!r} is already registered from {where}."]})
    version = None
    if template.pk is not None:
        version = (
            TemplateVersion.objects.filter(template=template, content_hash=digest, git_commit=git_commit)
            .order_by("-created_at", "-pk")
            .first()
        )
    template.title = golden_path.title
    template.description = golden_path.description
    template.owner = golden_path.owner
    template.tags = list(golden_path.tags)
    template.parameters_schema = golden_path.parameters_schema
    template.steps = golden_path.steps
    template.source = source
    template.builtin_folder = builtin_folder
    template.git_url, template.git_ref, template.git_path = git_url, git_ref, git_path
    template.version = version.version if version is not None else golden_path.version
    template.save()

    outcome = "unchanged"
    if version is None:
        version = TemplateVersion.objects.create(
            template=template,
            version=_new_version_label(template, golden_path.version, git_commit, digest),
            git_commit=git_commit,
            content_hash=digest,
            files={path: base64.b64encode(content).decode() for path, content in files.items()},
            parameters_schema=golden_path.parameters_schema,
            steps=golden_path.steps,
        )
        outcome = "created"
    if template.latest_id != version.pk or template.version != version.version:
        template.latest, template.version = version, version.version
        template.save(update_fields=["latest", "version", "updated_at"])
    if outcome != "unchanged":
        audit_record(
            action=f"scaffolder.template.version_{outcome}",
            target=template,
            changes={"version": version.version, "git_commit": git_commit, "content_hash": digest, "source": source},
        )
    return RegisteredVersion(version=version, outcome=outcome)


def templates_register_builtin(*, folder: Path | None = None) -> list[RegisteredVersion]:
    """Register every golden path shipped in ``golden_paths/`` (idempotent)."""
    root = folder or conf.golden_paths_dir()
    if not root.is_dir():
        return []
    registered = []
    for candidate in sorted(root.iterdir()):
        if candidate.is_dir() and not candidate.is_symlink() and (candidate / MANIFEST_FILENAME).is_file():
            golden_path = load_golden_path(candidate, within=root)
            registered.append(template_register(golden_path=golden_path, builtin_folder=candidate.name))
    return registered


def _check_git_source(url: str) -> None:
    from portal.net import FetchError, SafeHttpClient

    if url.startswith(("https://", "http://")):
        try:
            SafeHttpClient().check_url(url)
        except FetchError as exc:
            raise ScaffoldError({"git_url": [str(exc)]}) from exc
        return
    if url.startswith(("/", "file://")) and conf.allow_local_git():
        return
    raise ScaffoldError(
        {"git_url": ["must be an https:// repository URL (local paths only in development and tests)."]}
    )


def template_register_git(*, actor: User | None, url: str, ref: str = "", path: str = "") -> RegisteredVersion:
    """Register (or refresh) a golden path kept in a git repository, recording the commit it came from."""
    if actor is not None and not user_is_platform_admin(actor):
        raise ScaffoldPermissionError("Only platform admins can register golden paths.")
    url, ref, path = url.strip(), ref.strip(), path.strip().strip("/")
    _check_git_source(url)
    if ref.startswith("-") or any(character.isspace() for character in ref):
        raise ScaffoldError({"git_ref": ["must be a branch or tag name."]})
    if path and any(part in ("..", ".", "") for part in path.split("/")):
        raise ScaffoldError({"git_path": ["must be a relative folder inside the repository, without '..'."]})
    with tempfile.TemporaryDirectory(prefix="portal-template-") as scratch:
        checkout = Path(scratch) / "checkout"
        try:
            commit = shallow_clone(url, checkout, ref=ref, env=git_environment(allow_local=conf.allow_local_git()))
        except GitError as exc:
            raise ScaffoldError({"git_url": [str(exc)]}) from exc
        try:
            golden_path = load_golden_path(checkout / path if path else checkout, within=checkout)
        except ScaffolderError as exc:
            raise ScaffoldError({"path": [str(exc).replace(str(checkout), "<repository>")]}) from exc
        return template_register(
            golden_path=golden_path,
            source=GoldenPathTemplate.Source.GIT,
            git_url=url,
            git_ref=ref,
            git_path=path,
            git_commit=commit,
            actor=actor,
        )
