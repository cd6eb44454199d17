"""Locations: URLs and git repositories that hold descriptors, synced on a schedule.

A sync claims the row with a conditional UPDATE (two workers or two beats never sync one location at once),
imports what it finds, marks entities that vanished as orphaned (never deletes them) and records the outcome.
Every URL goes through the SSRF-safe client; git URLs are checked the same way before git connects.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.import_report import ImportReport
from catalog.importing import import_inputs
from catalog.models import Agent, Location, Team, Tool
from catalog.services import CatalogError, CatalogPermissionError
from portal.audit import audit_record, audit_record_many
from portal.context import Actor, acting_as, current_actor
from portal.net import FetchError, SafeHttpClient
from portal.roles import user_is_platform_admin
from portal.types import User

DESCRIPTOR_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILES = 2_000
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_TOTAL_BYTES = 50 * 1024 * 1024
CLAIM_TIMEOUT = timedelta(minutes=15)
GIT_TIMEOUT_SECONDS = 120


class LocationError(Exception):
    pass


@transaction.atomic
def location_create(
    *, actor: User | None, kind: str, target: str, path: str = "", default_owner: str | None = None
) -> Location:
    errors: dict[str, list[str]] = {}
    if kind not in (Location.Kind.URL, Location.Kind.GIT):
        errors["kind"] = ["must be url or git."]
    target = target.strip()
    owner = None
    if default_owner:
        owner = Team.objects.filter(name__iexact=default_owner).first()
        if owner is None:
            errors["default_owner"] = [f"team {default_owner!r} does not exist."]
    maintains_owner = owner is not None and owner.memberships.filter(user=actor, role="maintainer").exists()
    if actor is not None and not user_is_platform_admin(actor) and not maintains_owner:
        raise CatalogPermissionError(
            "Register locations for a team you maintain (set default_owner) or ask a platform admin."
        )
    if not errors:
        try:
            _check_target(kind, target)
        except (FetchError, LocationError) as exc:
            errors["target"] = [str(exc)]
    if ".." in Path(path).parts or path.startswith("/"):
        errors["path"] = ["must be a relative path inside the repository, without '..'."]
    if Location.objects.filter(kind=kind, target=target, path=path).exists():
        errors["target"] = ["this location is already registered."]
    if errors:
        raise CatalogError(errors)
    location = Location.objects.create(kind=kind, target=target, path=path, default_owner=owner, created_by=actor)
    audit_record(
        action="catalog.location.created", target=location, changes={"kind": kind, "target": target, "path": path}
    )
    from catalog.tasks import sync_location

    sync_location.delay_on_commit(location.pk)
    return location


@transaction.atomic
def location_delete(*, actor: User | None, location: Location) -> None:
    if actor is not None and not user_is_platform_admin(actor) and location.created_by_id != actor.pk:
        raise CatalogPermissionError("Only the person who registered a location or a platform admin can remove it.")
    audit_record(action="catalog.location.deleted", target=location, changes={"target": location.target})
    location.delete()


def location_request_sync(*, actor: User | None, location: Location) -> None:
    from catalog.tasks import sync_location

    if not location.enabled:
        raise CatalogError({"location": ["this location is disabled."]})
    owner = location.default_owner
    allowed = (
        actor is None
        or user_is_platform_admin(actor)
        or location.created_by_id == actor.pk
        or (owner is not None and owner.memberships.filter(user=actor, role="maintainer").exists())
    )
    if not allowed:
        raise CatalogPermissionError(
            "Only who registered the location, its team's maintainers or platform admins can sync it."
        )
    transaction.on_commit(lambda: sync_location.delay(location.pk))


def _check_target(kind: str, target: str) -> None:
    if kind == Location.Kind.URL:
        SafeHttpClient().check_url(target)
        return
    if target.startswith(("https://", "http://")):
        SafeHttpClient().check_url(target)
        return
    if getattr(settings, "LOCATION_ALLOW_LOCAL_GIT", False) and (
        target.startswith("file://") or target.startswith("/")
    ):
        return
    raise LocationError("git locations must be https:// URLs (local paths only when LOCATION_ALLOW_LOCAL_GIT is on).")


def _claim(location_id: int) -> bool:
    now = timezone.now()
    claimed = (
        Location.objects.filter(pk=location_id, enabled=True)
        .filter(Q(sync_claimed_at__isnull=True) | Q(sync_claimed_at__lt=now - CLAIM_TIMEOUT))
        .update(sync_claimed_at=now)
    )
    return claimed == 1


def _read_url(location: Location) -> list[tuple[str, bytes]]:
    response = SafeHttpClient().get(location.target, max_bytes=MAX_FILE_BYTES)
    if response.status != 200:
        raise LocationError(f"{location.target} answered HTTP {response.status}.")
    return [(location.target, response.content)]


def _descriptor_files(root: Path) -> Iterator[Path]:
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (Path(folder) / d).is_symlink())
        for filename in sorted(filenames):
            candidate = Path(folder) / filename
            if filename.endswith(DESCRIPTOR_SUFFIXES) and not candidate.is_symlink():
                yield candidate


def _read_git(location: Location) -> list[tuple[str, bytes]]:
    _check_target(Location.Kind.GIT, location.target)
    with tempfile.TemporaryDirectory(prefix="portal-location-") as workdir:
        checkout = Path(workdir) / "repo"
        allow_file = "always" if getattr(settings, "LOCATION_ALLOW_LOCAL_GIT", False) else "never"
        command = [
            "git", "-c", "protocol.allow=never", "-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always",
            "-c", f"protocol.file.allow={allow_file}", "-c", "http.followRedirects=false",
            "clone", "--depth", "1", "--quiet", "--no-tags", "--", location.target, str(checkout),
        ]  # fmt: skip
        env = {"GIT_TERMINAL_PROMPT": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir}
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=GIT_TIMEOUT_SECONDS, env=env)
        except subprocess.TimeoutExpired as exc:
            raise LocationError(f"git clone of {location.target} took longer than {GIT_TIMEOUT_SECONDS} s.") from exc
        except subprocess.CalledProcessError as exc:
            message = exc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unknown error"]
            raise LocationError(f"git clone of {location.target} failed: {message[0]}") from exc
        root = (checkout / location.path).resolve()
        if not root.is_relative_to(checkout.resolve()) or not root.exists():
            raise LocationError(f"path {location.path!r} does not exist in the repository.")
        files = [root] if root.is_file() else list(_descriptor_files(root))
        inputs: list[tuple[str, bytes]] = []
        total = 0
        for file in files[:MAX_FILES]:
            size = file.stat().st_size
            if size > MAX_FILE_BYTES or total + size > MAX_TOTAL_BYTES:
                raise LocationError(f"{file.relative_to(checkout)} makes the location larger than the limits.")
            total += size
            inputs.append((str(file.relative_to(checkout)), file.read_bytes()))
        return inputs


def location_sync(*, location_id: int) -> ImportReport | None:
    """Sync one location if this caller wins the claim; returns None when another sync holds it. The audit names
    the person who added the location (the sync is theirs, done by the system on their behalf)."""
    if not _claim(location_id):
        return None
    location = Location.objects.select_related("default_owner", "created_by").get(pk=location_id)
    creator = location.created_by
    on_behalf = (
        Actor(kind="user", user_id=creator.pk, label=f"{creator.get_username()} (location #{location.pk} sync)"[:200])
        if creator is not None
        else current_actor()
    )
    with acting_as(on_behalf):
        return _sync(location)


def _sync(location: Location) -> ImportReport | None:
    report: ImportReport | None = None
    errors: list[str] = []
    orphaned = 0
    try:
        inputs = _read_url(location) if location.kind == Location.Kind.URL else _read_git(location)
        report = import_inputs(
            inputs,
            actor=None,
            default_owner=location.default_owner.name if location.default_owner else None,
            location=location,
        )
        seen: dict[str, set[str]] = {"agent": set(), "tool": set()}
        for item in report.outcomes:
            if item["kind"] in seen:
                seen[item["kind"]].add(item["name"].lower())
        with transaction.atomic():
            orphaned = mark_orphans(location=location, seen=seen)
    except (FetchError, LocationError) as exc:
        errors.append(str(exc))
    outcome = (
        Location.Outcome.FAILED
        if errors
        else (Location.Outcome.OK if report and report.ok else Location.Outcome.PARTIAL)
    )
    summary: dict[str, Any] = report.as_dict() if report else {"errors": []}
    summary.pop("entities", None)
    summary["errors"] = [*({"message": e} for e in errors), *summary.get("errors", [])][:200]
    summary["orphaned"] = orphaned
    with transaction.atomic():
        Location.objects.filter(pk=location.pk).update(
            last_synced_at=timezone.now(), last_outcome=outcome, last_report=summary, sync_claimed_at=None
        )
        audit_record(
            action="catalog.location.synced",
            target=location,
            changes={
                "outcome": outcome,
                "orphaned": orphaned,
                **{k: summary.get(k, 0) for k in ("created", "updated", "unchanged", "failed")},
            },
        )
    return report


def locations_due(*, every: timedelta) -> list[int]:
    cutoff = timezone.now() - every
    due = Location.objects.filter(enabled=True).filter(Q(last_synced_at__isnull=True) | Q(last_synced_at__lt=cutoff))
    return list(due.values_list("pk", flat=True))


def mark_orphans(*, location: Location, seen: Mapping[str, set[str]]) -> int:
    """Entities from this location that it no longer describes are marked orphaned, never deleted."""
    marked = 0
    for kind, model in (("agent", Agent), ("tool", Tool)):
        vanished = model.objects.filter(source_location=location, orphaned=False).exclude(
            name__in=seen.get(kind, set())
        )
        for instance in vanished:
            model.objects.filter(pk=instance.pk).update(orphaned=True)
            audit_record_many(
                [{"action": f"catalog.{kind}.orphaned", "target": instance, "changes": {"location": str(location)}}]
            )
            marked += 1
    return marked
