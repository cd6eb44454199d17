"""Scaffolder writes: register golden paths and their versions, start, execute and retry runs.

A run is a list of steps, each a portal action (templates run no code of their own). Every step is idempotent and
records its output, so a failed run is retried from the failed step: succeeded steps are never run again. Commits
are reproducible (author and date come from the run), which lets any worker re-create the work folder of an
earlier step byte for byte instead of depending on the disk of the worker that ran it.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.models import OPEN_STATES, ApprovalRequest
from approvals.services import ApprovalConflict, ApprovalError, ApprovalPermissionError
from approvals.submitting import request_submit
from catalog import selectors as catalog_selectors
from catalog.formats import parse_document_bytes
from catalog.importing import import_inputs
from catalog.models import Agent, EntitySource, Tool, ToolGrant
from catalog.services import CatalogError, CatalogPermissionError, grant_request
from portal.audit import audit_record
from portal.context import SYSTEM_ACTOR, acting_as, actor_for_user
from portal.roles import user_is_platform_admin
from portal.types import User
from scaffolder import conf
from scaffolder.errors import ScaffoldConflict, ScaffoldError, ScaffoldPermissionError
from scaffolder.git import (
    GitError,
    Identity,
    archive_zip,
    commit_all,
    git_environment,
    head_commit,
    push,
    remote_refs,
    shallow_clone,
)
from scaffolder.golden_path import GoldenPath, ParameterError, ScaffolderError
from scaffolder.manifest import load_golden_path, validate_parameters
from scaffolder.models import GoldenPathTemplate, RepositoryUpdate, RunStep, ScaffoldRun, TemplateVersion
from scaffolder.publishers import PublishError, available_publishers, publisher_for, push_access
from scaffolder.registering import (
    content_hash,
)
from scaffolder.rendering import render_golden_path, write_rendered
from scaffolder.updating import read_answers, update_repository

logger = logging.getLogger(__name__)

DESCRIPTOR_FILES = ("catalog-info.yaml", "server.json")  # the first one a template renders is registered
SOURCE_LOCATION = "backstage.io/source-location"
DEFAULT_GRANT_ENVIRONMENT = "production"
RUN_LEASE = timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 300) + 60)
MAX_LOG_CHARS = 100_000
ONBOARDING_KINDS = {"agent": ApprovalRequest.Kind.AGENT_ONBOARDING, "tool": ApprovalRequest.Kind.TOOL_ONBOARDING}


class StepFailure(Exception):
    """A step could not finish; the message is shown to people on the run page."""


# --- templates -------------------------------------------------------------------------------------------------


def _materialised_folder(version: TemplateVersion) -> Path:
    """The version's files on this machine's disk, written once per content hash (atomic rename)."""
    folder = conf.work_dir() / "templates" / f"{version.template.name}-{version.content_hash[:24]}"
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder.parent))
    files = {path: base64.b64decode(content) for path, content in version.files.items()}
    if content_hash(files) != version.content_hash:
        raise StepFailure(f"the stored files of {version} do not match their hash; register the template again.")
    write_rendered(files, scratch)
    try:
        scratch.rename(folder)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)  # another process won the race with the same content
    return folder


@functools.lru_cache(maxsize=64)
def _load_materialised(folder: str) -> GoldenPath:
    return load_golden_path(Path(folder))


def golden_path_for(version: TemplateVersion) -> GoldenPath:
    """The version's golden path, under the version label recorded for it (which generated answers then carry)."""
    golden_path = _load_materialised(str(_materialised_folder(version)))
    if golden_path.version != version.version:
        golden_path = dataclasses.replace(golden_path, version=version.version)
    return golden_path


def template_version_find(*, template: GoldenPathTemplate, version: str) -> TemplateVersion:
    found = template.versions.filter(version=version).order_by("-created_at").first()
    if found is None:
        raise ScaffoldError({"version": [f"{template.name} has no recorded version {version!r}."]})
    return found


# --- preview and validation ----------------------------------------------------------------------------------


def _parameter_errors(exc: ParameterError) -> dict[str, list[str]]:
    return {name: [message] for name, message in exc.errors.items()}


def preview_render(*, version: TemplateVersion, values: Mapping[str, Any]) -> dict[str, bytes]:
    """Render in memory only: nothing is written anywhere."""
    try:
        return render_golden_path(golden_path_for(version), values)
    except ParameterError as exc:
        raise ScaffoldError(_parameter_errors(exc)) from exc
    except ScaffolderError as exc:
        raise ScaffoldError({"template": [str(exc)]}) from exc


def run_check_values(
    *, actor: User, version: TemplateVersion, values: Mapping[str, Any], publisher: str
) -> dict[str, Any]:
    """Validate values for a run, field by field: the schema first, then what the catalog knows."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    try:
        cleaned = validate_parameters(golden_path_for(version), values)
    except ParameterError as exc:
        errors.update(_parameter_errors(exc))
    properties = version.parameters_schema.get("properties", {})
    if "owner" in properties and isinstance(values.get("owner"), str) and "owner" not in errors:
        allowed = set(catalog_selectors.owner_choices(user=actor).values_list("name", flat=True))
        if values["owner"] not in allowed:
            errors["owner"] = [f"You can only create for a team you maintain ({', '.join(sorted(allowed)) or 'none'})."]
    if "tools" in properties and isinstance(values.get("tools"), list) and "tools" not in errors:
        wanted = {str(name) for name in values["tools"]}
        known = set(Tool.objects.filter(name__in=wanted).values_list("name", flat=True))
        if missing := sorted(wanted - known):
            errors["tools"] = [f"Not in the catalog: {', '.join(missing)}. Pick tools the catalog knows."]
    if "name" in properties and isinstance(values.get("name"), str) and "name" not in errors:
        name = values["name"].lower()
        if Agent.objects.filter(name=name).exists() or Tool.objects.filter(name=name).exists():
            errors["name"] = [f"The catalog already has an agent or tool called {name!r}; pick another name."]
    if publisher not in available_publishers():
        errors["publisher"] = [f"Must be one of: {', '.join(available_publishers())}."]
    if errors:
        raise ScaffoldError(errors)
    return cleaned


# --- runs ------------------------------------------------------------------------------------------------------


def _enqueue(run_id: int) -> None:
    from scaffolder.tasks import execute_run

    execute_run.delay_on_commit(run_id)


@transaction.atomic
def run_start(
    *,
    actor: User,
    template: GoldenPathTemplate,
    values: Mapping[str, Any],
    publisher: str = ScaffoldRun.Publisher.NONE,
    skip_actions: Iterable[str] = (),
    enqueue: bool = True,
) -> ScaffoldRun:
    """Validate and queue a run of the template's latest version. ``skip_actions`` leaves steps out (CLI)."""
    if not template.enabled or template.latest is None:
        raise ScaffoldError({"template": [f"{template.name} is not available."]})
    version = template.latest
    cleaned = run_check_values(actor=actor, version=version, values=values, publisher=publisher)
    run = ScaffoldRun.objects.create(
        template_version=version, requester_id=actor.pk, values=cleaned, publisher=publisher, created_at=timezone.now()
    )
    skipped = set(skip_actions)
    if publisher == ScaffoldRun.Publisher.NONE:
        skipped.add("publish")
    RunStep.objects.bulk_create(
        [
            RunStep(
                run=run,
                position=position,
                step_id=step["id"],
                action=step["action"],
                name=step["name"],
                status=RunStep.Status.SKIPPED if step["action"] in skipped else RunStep.Status.PENDING,
                log="Not part of this run." if step["action"] in skipped else "",
            )
            for position, step in enumerate(version.steps)
        ]
    )
    audit_record(
        action="scaffolder.run.started",
        target=run,
        changes={"template": template.name, "version": version.version, "values": cleaned, "publisher": publisher},
    )
    if enqueue:
        _enqueue(run.pk)
    return run


def can_view_run(user: Any, run: ScaffoldRun) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and (
        run.requester_id == user.pk or user_is_platform_admin(user)
    )


@transaction.atomic
def run_retry(*, actor: User, run: ScaffoldRun) -> ScaffoldRun:
    """Queue a failed run again; it resumes at the failed step."""
    if not can_view_run(actor, run):
        raise ScaffoldPermissionError("Only the person who started the run (or a platform admin) can retry it.")
    claimed = ScaffoldRun.objects.filter(pk=run.pk, state=ScaffoldRun.State.FAILED).update(
        state=ScaffoldRun.State.QUEUED, error="", finished_at=None, lease_until=None
    )
    if claimed != 1:
        run.refresh_from_db(fields=["state"])
        raise ScaffoldConflict(f"Only a failed run can be retried; run #{run.pk} is {run.state}.")
    RunStep.objects.filter(run=run, status__in=[RunStep.Status.FAILED, RunStep.Status.RUNNING]).update(
        status=RunStep.Status.PENDING
    )
    run.refresh_from_db()
    audit_record(action="scaffolder.run.retried", target=run, changes={"from_step": run.current_step})
    _enqueue(run.pk)
    return run


def _claim(run_id: int) -> bool:
    """Take the run: queued, or running with an expired lease (its worker died). Exactly one caller wins."""
    now = timezone.now()
    claimed = (
        ScaffoldRun.objects.filter(pk=run_id)
        .filter(Q(state=ScaffoldRun.State.QUEUED) | Q(state=ScaffoldRun.State.RUNNING, lease_until__lt=now))
        .update(state=ScaffoldRun.State.RUNNING, lease_until=now + RUN_LEASE, started_at=now)
    )
    return claimed == 1


def run_lease_remaining(*, run_id: int) -> float | None:
    """Seconds until a running run's lease expires (its worker may have died), or None when nothing holds it."""
    lease = ScaffoldRun.objects.filter(pk=run_id, state=ScaffoldRun.State.RUNNING).values_list("lease_until", flat=True)
    until = lease.first()
    if until is None:
        return None
    return max(0.0, (until - timezone.now()).total_seconds())


def run_execute(*, run_id: int) -> ScaffoldRun | None:
    """Run every step that has not succeeded yet, in order; stop at the first failure. None: not claimed."""
    if not _claim(run_id):
        return None
    run = ScaffoldRun.objects.select_related("template_version__template", "requester").get(pk=run_id)
    with acting_as(actor_for_user(run.requester) or SYSTEM_ACTOR):
        for step in run.steps.order_by("position"):
            if step.status in (RunStep.Status.SUCCEEDED, RunStep.Status.SKIPPED):
                continue
            failure = step_execute(run=run, step=step)
            if failure is not None:
                _finish(run, ScaffoldRun.State.FAILED, error=f"{step.name} failed: {failure}")
                return run
        _finish(run, ScaffoldRun.State.SUCCEEDED)
    # Everything that matters is in the database (zip, outputs) or reproducible (the commit).
    shutil.rmtree(run_work_folder(run).parent, ignore_errors=True)
    return run


def _finish(run: ScaffoldRun, state: str, *, error: str = "") -> None:
    now = timezone.now()
    with transaction.atomic():
        ScaffoldRun.objects.filter(pk=run.pk).update(state=state, error=error, finished_at=now, lease_until=None)
        run.state, run.error, run.finished_at = state, error, now
        audit_record(action=f"scaffolder.run.{state}", target=run, changes={"step": run.current_step, "error": error})


class StepContext:
    """What a step handler gets: the run, its step row, a log that people see live, and the step's output."""

    def __init__(self, run: ScaffoldRun, step: RunStep) -> None:
        self.run = run
        self.step = step

    @property
    def output(self) -> dict[str, Any]:
        return self.step.output

    def log(self, message: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        self.step.log = (self.step.log + f"{stamp} {message}\n")[-MAX_LOG_CHARS:]
        RunStep.objects.filter(pk=self.step.pk).update(log=self.step.log)

    def save_output(self) -> None:
        RunStep.objects.filter(pk=self.step.pk).update(output=self.step.output)

    def save_run(self, *fields: str) -> None:
        ScaffoldRun.objects.filter(pk=self.run.pk).update(**{name: getattr(self.run, name) for name in fields})

    @functools.cached_property
    def golden_path(self) -> GoldenPath:
        return golden_path_for(self.run.template_version)

    @property
    def repo(self) -> Path:
        return run_work_folder(self.run)


def run_work_folder(run: ScaffoldRun) -> Path:
    return conf.work_dir() / "runs" / str(run.pk) / "repo"


def step_execute(*, run: ScaffoldRun, step: RunStep) -> str | None:
    """Run one step (again); returns None on success or the failure message. Safe to call twice."""
    now = timezone.now()
    step.status, step.attempts, step.started_at, step.finished_at = RunStep.Status.RUNNING, step.attempts + 1, now, None
    if step.attempts > 1:
        step.log += f"--- attempt {step.attempts} ---\n"
    step.save(update_fields=["status", "attempts", "started_at", "finished_at", "log"])
    run.current_step = step.step_id
    ScaffoldRun.objects.filter(pk=run.pk).update(current_step=step.step_id, lease_until=now + RUN_LEASE)
    context = StepContext(run, step)
    handler = STEP_HANDLERS.get(step.action)
    failure: str | None = None
    try:
        if handler is None:
            raise StepFailure(f"the portal has no action called {step.action!r}.")
        handler(context)
    except (StepFailure, PublishError, GitError, ScaffolderError, ScaffoldError) as exc:
        failure = str(exc)
    except (ApprovalError, ApprovalConflict, ApprovalPermissionError, CatalogError, CatalogPermissionError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        logger.exception("scaffold run %s step %s crashed", run.pk, step.step_id)
        failure = f"unexpected {type(exc).__name__}; the portal's log has the details."
    if failure is not None:
        context.log(f"Failed: {failure}")
    step.status = RunStep.Status.FAILED if failure else RunStep.Status.SUCCEEDED
    step.finished_at = timezone.now()
    step.save(update_fields=["status", "finished_at", "output"])
    return failure


# --- step handlers -----------------------------------------------------------------------------------------------


def _render_to(run: ScaffoldRun, golden_path: GoldenPath, folder: Path) -> dict[str, bytes]:
    files = render_golden_path(golden_path, run.values)
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    write_rendered(files, folder)
    return files


def _render_into(context: StepContext) -> dict[str, bytes]:
    return _render_to(context.run, context.golden_path, context.repo)


def _step_render(context: StepContext) -> None:
    files = _render_into(context)
    size = sum(len(content) for content in files.values())
    context.output.update({"files": len(files), "bytes": size, "content_hash": content_hash(files)})
    version = context.run.template_version
    context.log(f"Rendered {len(files)} files ({size:,} bytes) from {version.template.name} {version.version}.")


def _identity(user: Any) -> Identity:
    name = (user.get_full_name() or user.get_username()).strip()
    return Identity(name=name, email=user.email or f"{user.get_username()}@users.noreply.agent-portal")


def _commit_to(run: ScaffoldRun, folder: Path) -> str:
    version = run.template_version
    message = f"Scaffold {run.project_name} from the {version.template.name} golden path {version.version}"
    return commit_all(folder, identity=_identity(run.requester), when=run.created_at, message=message)


def _commit(context: StepContext) -> str:
    return _commit_to(context.run, context.repo)


def run_materialise(*, run: ScaffoldRun, folder: Path) -> str:
    """Re-create a committed run's repository in ``folder``: the same files and the same commit id."""
    if not run.commit_sha:
        raise StepFailure(f"run #{run.pk} has not committed anything yet.")
    _render_to(run, golden_path_for(run.template_version), folder)
    commit = _commit_to(run, folder)
    if commit != run.commit_sha:
        raise StepFailure(f"the re-created commit {commit[:12]} differs from {run.commit_sha[:12]}.")
    return commit


def _ensure_committed(context: StepContext) -> Path:
    """The committed work folder, re-created from the template when this worker does not have it."""
    repo = context.repo
    if (repo / ".git").is_dir():
        try:
            if head_commit(repo) == context.run.commit_sha:
                return repo
        except GitError:
            pass
    context.log("Re-creating the work folder from the template (reproducible commit).")
    _render_into(context)
    commit = _commit(context)
    if commit != context.run.commit_sha:
        raise StepFailure(f"the re-created commit {commit[:12]} differs from {context.run.commit_sha[:12]}.")
    return repo


def _step_git_commit(context: StepContext) -> None:
    run = context.run
    if not (context.repo / ".portal-answers.yml").is_file():
        context.log("Work folder missing here; rendering it again.")
        _render_into(context)
    commit = _commit(context)
    run.commit_sha = commit
    run.archive = archive_zip(context.repo, prefix=run.project_name)
    run.archive_name = f"{run.project_name}.zip"
    context.save_run("commit_sha", "archive", "archive_name")
    context.output.update({"commit": commit, "branch": "main", "archive_bytes": len(run.archive)})
    context.log(f"Committed {commit[:12]} on main as {_identity(run.requester).name}; zip ready.")


def _step_publish(context: StepContext) -> None:
    run = context.run
    repo = _ensure_committed(context)
    published = publisher_for(run.publisher).publish(
        repo,
        name=run.project_name,
        description=str(run.values.get("description", "")),
        commit=run.commit_sha,
        state=context.output,
        save=context.save_output,
        log=context.log,
    )
    run.repository_url = published.repository_url
    context.save_run("repository_url")
    context.output.update(
        {"repository_url": published.repository_url, "clone_url": published.clone_url, "pushed": published.pushed}
    )
    context.log(f"Published: {published.repository_url}")


def _descriptor(context: StepContext) -> tuple[str, bytes]:
    files = render_golden_path(context.golden_path, context.run.values)
    for name in DESCRIPTOR_FILES:
        if name in files:
            return name, files[name]
    raise StepFailure(f"the template renders no catalog descriptor ({' or '.join(DESCRIPTOR_FILES)}).")


def _with_repository(filename: str, document: bytes, repository_url: str) -> bytes:
    """The catalog copy links to the repository (Backstage source-location); the repository's file is unchanged."""
    if filename != "catalog-info.yaml" or not repository_url.startswith(("https://", "http://")):
        return document
    data = yaml.safe_load(document)
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        return document
    annotations = data["metadata"].setdefault("annotations", {})
    if isinstance(annotations, dict):
        annotations[SOURCE_LOCATION] = f"url:{repository_url}"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def _open_request(kind: str, subject_key: str) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(subject_key=subject_key, kind=kind, state__in=OPEN_STATES).first()


def _remember_requests(context: StepContext, *request_ids: int) -> None:
    run = context.run
    run.approval_request_ids = sorted({*run.approval_request_ids, *request_ids})
    context.save_run("approval_request_ids")


def _step_register_catalog(context: StepContext) -> None:
    run = context.run
    filename, document = _descriptor(context)
    parsed = parse_document_bytes(document, source=filename)
    if parsed.errors or len(parsed.entities) != 1 or parsed.entities[0].kind not in ONBOARDING_KINDS:
        problems = (
            "; ".join(f"{error.field}: {error.message}" for error in parsed.errors) or "expected one agent or tool"
        )
        raise StepFailure(f"{filename} is not a catalog descriptor the portal can register ({problems}).")
    kind, name = parsed.entities[0].kind, parsed.entities[0].name.lower()
    model: type[Agent] | type[Tool] = Agent if kind == "agent" else Tool
    ours = run.agent_id if kind == "agent" else run.tool_id
    with transaction.atomic():
        existing = model.objects.filter(name=name).first()
        if existing is not None and existing.pk != ours:
            raise StepFailure(f"the catalog already has a {kind} called {name!r} that this run did not create.")
        source = f"scaffold-run-{run.pk}/{filename}"
        report = import_inputs(
            [(source, _with_repository(filename, document, run.repository_url))],
            actor=run.requester,
            source_kind=EntitySource.SCAFFOLDER,
        )
        if not report.ok:
            raise StepFailure("the catalog refused the descriptor: " + "; ".join(str(issue) for issue in report.errors))
        entity = model.objects.get(name=name)
        if kind == "agent":
            run.agent = entity  # type: ignore[assignment]
            context.save_run("agent")
        else:
            run.tool = entity  # type: ignore[assignment]
            context.save_run("tool")
        outcome = report.outcomes[0]["outcome"] if report.outcomes else "unchanged"
        context.log(f"Catalog: {kind} {name} {outcome} (draft).")
        onboarding = ONBOARDING_KINDS[kind]
        request = _open_request(onboarding, f"{kind}:{entity.pk}")
        if request is None:
            subject = {"agent": entity} if kind == "agent" else {"tool": entity}
            request = request_submit(
                actor=run.requester,
                kind=onboarding,
                justification=f"Scaffolded from the {run.template_version} golden path (run #{run.pk}).",
                **subject,  # type: ignore[arg-type]
            )
            context.log(f"Filed {request.get_kind_display()} request #{request.pk}.")
        else:
            context.log(f"{request.get_kind_display().capitalize()} request #{request.pk} is already open.")
        _remember_requests(context, request.pk)
        context.output.update({"kind": kind, "name": name, "entity_id": entity.pk, "onboarding_request": request.pk})


def _step_request_grants(context: StepContext) -> None:
    run = context.run
    if run.agent_id is None:
        raise StepFailure("there is no registered agent to request tools for; the register step must run first.")
    agent = Agent.objects.get(pk=run.agent_id)
    wanted = [str(name) for name in run.values.get("tools", [])]
    if not wanted:
        context.log("The agent requests no tools.")
    grants: list[dict[str, Any]] = []
    missing: list[str] = []
    environments = [str(name) for name in run.values.get("environments") or [DEFAULT_GRANT_ENVIRONMENT]]
    with transaction.atomic():
        for tool_name in wanted:
            tool = Tool.objects.filter(name=tool_name).first()
            if tool is None:
                missing.append(tool_name)
                context.log(f"Tool {tool_name} is no longer in the catalog: no grant requested.")
                continue
            # A grant covers the capabilities it names (an empty list covers none): ask for the tool's operations.
            operations = list(tool.capabilities.values_list("name", flat=True))
            for environment in environments:
                grants.append(_request_grant(context, agent, tool, environment, operations))
    context.output.update({"grants": grants, "missing_tools": missing})


def _request_grant(
    context: StepContext, agent: Agent, tool: Tool, environment: str, operations: list[str]
) -> dict[str, Any]:
    run = context.run
    grant, _ = grant_request(
        actor=run.requester, agent=agent, tool=tool, environment=environment, capability_names=operations
    )
    request = _open_request(ApprovalRequest.Kind.TOOL_GRANT, f"grant:{grant.pk}")
    if request is None and grant.status == ToolGrant.Status.REQUESTED:
        request = request_submit(actor=run.requester, kind=ApprovalRequest.Kind.TOOL_GRANT, grant=grant)
        context.log(f"Requested {tool.name} ({environment}): request #{request.pk}.")
    elif request is not None:
        context.log(f"Grant request #{request.pk} for {tool.name} ({environment}) is already open.")
    else:
        context.log(f"{agent.name} already holds an {grant.status} grant for {tool.name} ({environment}).")
    if request is not None:
        _remember_requests(context, request.pk)
    return {
        "tool": tool.name,
        "environment": environment,
        "grant": grant.pk,
        "request": request.pk if request else None,
    }


STEP_HANDLERS: dict[str, Callable[[StepContext], None]] = {
    "render": _step_render,
    "git_commit": _step_git_commit,
    "publish": _step_publish,
    "register_catalog": _step_register_catalog,
    "request_grants": _step_request_grants,
}


# --- updating published repositories ----------------------------------------------------------------------------

UPDATE_BRANCH_PREFIX = "portal/update-"


def _published_clone_url(run: ScaffoldRun) -> str:
    step = run.steps.filter(action="publish", status=RunStep.Status.SUCCEEDED).first()
    return str(step.output.get("clone_url", "")) if step is not None else ""


def update_offer(*, run: ScaffoldRun) -> TemplateVersion | None:
    """The newer version a published run's repository could be updated to, if any."""
    template = GoldenPathTemplate.objects.select_related("latest").get(pk=run.template_version.template_id)
    latest = template.latest
    if run.state != ScaffoldRun.State.SUCCEEDED or run.publisher == ScaffoldRun.Publisher.NONE or latest is None:
        return None
    done = run.updates.filter(state=RepositoryUpdate.State.SUCCEEDED, to_version=latest).exists()
    return None if latest.pk == run.template_version_id or done else latest


@transaction.atomic
def repository_update_start(*, actor: User, run: ScaffoldRun) -> RepositoryUpdate:
    """Queue an update of the run's published repository to the template's latest version (on a new branch)."""
    if not can_view_run(actor, run):
        raise ScaffoldPermissionError("Only the person who started the run (or a platform admin) can update it.")
    ScaffoldRun.objects.select_for_update().filter(pk=run.pk).first()
    target = update_offer(run=run)
    if target is None or not _published_clone_url(run):
        raise ScaffoldConflict("There is no newer template version to apply to a repository this run published.")
    if run.updates.filter(state__in=[RepositoryUpdate.State.QUEUED, RepositoryUpdate.State.RUNNING]).exists():
        raise ScaffoldConflict("An update of this repository is already under way.")
    update = RepositoryUpdate.objects.create(run=run, requester_id=actor.pk, to_version=target)
    audit_record(
        action="scaffolder.repository.update_requested",
        target=run,
        changes={"update": update.pk, "to_version": target.version},
    )
    from scaffolder.tasks import execute_repository_update

    execute_repository_update.delay_on_commit(update.pk)
    return update


def repository_update_execute(*, update_id: int) -> RepositoryUpdate | None:
    """Clone, merge the template's changes (three-way), push them as a new branch. None: not claimed."""
    claimed = RepositoryUpdate.objects.filter(pk=update_id, state=RepositoryUpdate.State.QUEUED).update(
        state=RepositoryUpdate.State.RUNNING
    )
    if claimed != 1:
        return None
    update = RepositoryUpdate.objects.select_related(
        "run__template_version__template", "run__requester", "to_version__template", "requester"
    ).get(pk=update_id)
    lines: list[str] = []

    def log(message: str) -> None:
        lines.append(f"{timezone.now():%H:%M:%S} {message}")
        RepositoryUpdate.objects.filter(pk=update_id).update(log="\n".join(lines))

    with acting_as(actor_for_user(update.requester) or SYSTEM_ACTOR):
        try:
            _update_published(update, log)
            state, error = RepositoryUpdate.State.SUCCEEDED, ""
        except (StepFailure, PublishError, GitError, ScaffolderError, ScaffoldError) as exc:
            state, error = RepositoryUpdate.State.FAILED, str(exc)
            log(f"Failed: {error}")
        update.state, update.error, update.finished_at = state, error, timezone.now()
        update.log = "\n".join(lines)
        with transaction.atomic():
            update.save()
            audit_record(
                action=f"scaffolder.repository.update_{state}",
                target=update.run,
                changes={"update": update.pk, "branch": update.branch, "conflicts": update.conflicts, "error": error},
            )
    return update


def _update_published(update: RepositoryUpdate, log: Callable[[str], None]) -> None:
    run = update.run
    template = run.template_version.template
    clone_url = _published_clone_url(run)
    if not clone_url:
        raise StepFailure("the run has no published repository.")
    auth, allow_local = push_access(run.publisher, clone_url)
    secrets = auth.secrets if auth else ()
    env = git_environment(auth=auth, allow_local=allow_local)
    with tempfile.TemporaryDirectory(prefix="portal-update-") as scratch:
        checkout = Path(scratch) / "repo"
        log(f"Cloning {clone_url}.")
        shallow_clone(clone_url, checkout, ref="main", env=env, secrets=secrets)
        recorded = read_answers(checkout)
        if recorded.template != template.name:
            raise StepFailure(f"the repository now says it comes from {recorded.template!r}, not {template.name!r}.")
        old = template_version_find(template=template, version=recorded.version)
        update.from_version = old
        log(f"The repository is at {template.name} {old.version}; applying {update.to_version.version}.")
        result = update_repository(
            checkout,
            old=golden_path_for(old),
            new=golden_path_for(update.to_version),
            identity=_identity(update.requester),
            when=timezone.now(),
        )
        update.conflicts = [
            *result.conflicts,
            *(f"{path} (deleted by the template, kept)" for path in result.kept_deleted),
        ]
        if result.stopped:
            raise StepFailure(
                f"the team's changes conflict with the template's in {', '.join(result.conflicts)}; nothing was "
                "pushed. Run `manage.py scaffold --update` in a clone to resolve them by hand."
            )
        if result.up_to_date:
            log("Nothing to change: the repository already matches that version.")
            return
        branch = f"{UPDATE_BRANCH_PREFIX}{update.to_version.version}"
        if f"refs/heads/{branch}" in remote_refs(clone_url, env=env, secrets=secrets):
            raise StepFailure(f"the branch {branch} already exists there; merge or delete it, then update again.")
        push(checkout, clone_url, env=env, secrets=secrets, branch=branch)
        update.branch, update.commit_sha = branch, result.commit or ""
        log(f"Pushed {len(result.changed)} changed file(s) to branch {branch}; merge it when ready.")
        if update.conflicts:
            log("Kept on that branch: " + ", ".join(update.conflicts))
