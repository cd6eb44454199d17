"""Scaffold from a golden path on the command line, update a generated repository, or register golden paths.

manage.py scaffold python-agent --set name=helper --set owner=platform --set agent_type=sre --output ./helper
manage.py scaffold python-agent --set ... --publish --register --user alice [--output DIR]
manage.py scaffold --update ./helper            # three-way merge of the template's newer version
manage.py scaffold --list | --register-builtin | --register-git URL [--ref main] [--path templates/x]
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.management.commands._acting import acting_for, add_as_argument, command_user
from scaffolder import registering, services
from scaffolder.git import GitError, Identity, commit_all
from scaffolder.golden_path import GoldenPath, ParameterError, ScaffolderError
from scaffolder.manifest import load_golden_path
from scaffolder.models import GoldenPathTemplate, ScaffoldRun
from scaffolder.publishers import available_publishers
from scaffolder.rendering import render_golden_path, write_rendered
from scaffolder.updating import read_answers, update_repository

AUTHOR_PATTERN = re.compile(r"^(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>$")
DEFAULT_AUTHOR = "Agent Portal <scaffolder@agent-portal.invalid>"
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


class Command(BaseCommand):
    help = "Render a golden path into a folder (optionally publish and register it), or update a generated repo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("template", nargs="?", help="Registered golden path name, or a template folder.")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="A parameter value.")
        parser.add_argument("--output", help="Folder to write the new repository into (must be new or empty).")
        parser.add_argument("--publish", action="store_true", help="Publish through the portal (needs --user).")
        parser.add_argument("--publisher", choices=[p.value for p in ScaffoldRun.Publisher], help="Where to publish.")
        parser.add_argument("--register", action="store_true", help="Register in the catalog and file requests.")
        add_as_argument(parser, "--user")  # --user: its older name
        parser.add_argument("--author", help=f'Commit author, "Name <email>" (default "{DEFAULT_AUTHOR}").')
        parser.add_argument("--no-git", action="store_true", help="Only write the files; no git repository.")
        parser.add_argument("--update", metavar="REPO_DIR", help="Update a generated repository to the latest version.")
        parser.add_argument("--to-version", help="With --update: the version to update to (default: the latest).")
        parser.add_argument("--list", action="store_true", help="List registered golden paths.")
        parser.add_argument(
            "--register-builtin", action="store_true", help="Register the shipped golden paths (migrate does too)."
        )
        parser.add_argument("--register-git", metavar="URL", help="Register a golden path from a git repository.")
        parser.add_argument("--ref", default="", help="With --register-git: branch or tag (default branch if empty).")
        parser.add_argument("--path", default="", help="With --register-git: template folder inside the repository.")

    def handle(self, *args: Any, **options: Any) -> None:
        options["user"] = options.pop("as_user")
        writes = options["register_builtin"] or options["register_git"] or options["publish"] or options["register"]
        user = command_user(options["user"]) if writes else None
        if user is not None:
            options["user"] = user.get_username()
        with acting_for(user, write=self.stderr.write if writes else None):
            self._handle(user, options)

    def _handle(self, user: Any, options: dict[str, Any]) -> None:
        try:
            if options["list"]:
                self._list()
            elif options["register_builtin"]:
                for registered in registering.templates_register_builtin():
                    version = registered.version
                    self.stdout.write(f"Golden path {version.template.name} {version.version}: {registered.outcome}")
            elif options["register_git"]:
                registered = registering.template_register_git(
                    actor=user, url=options["register_git"], ref=options["ref"], path=options["path"]
                )
                version = registered.version
                self.stdout.write(
                    f"{version.template.name} {version.version} @{version.git_commit[:12]}: {registered.outcome}"
                )
            elif options["update"]:
                self._update(options)
            elif options["template"]:
                self._scaffold(options)
            else:
                raise CommandError("Name a template (or a template folder), or use --update, --list or --register-*.")
        except services.ScaffoldError as exc:
            raise CommandError(_describe(exc.errors)) from exc
        except services.ScaffoldPermissionError as exc:
            raise CommandError(str(exc)) from exc
        except (ScaffolderError, GitError) as exc:
            raise CommandError(str(exc)) from exc

    # --- listing ---------------------------------------------------------------------------------------------

    def _list(self) -> None:
        for template in GoldenPathTemplate.objects.order_by("name"):
            versions = ", ".join(template.versions.values_list("version", flat=True).order_by("created_at"))
            self.stdout.write(f"{template.name:<24} {template.version:<10} {template.title}  (versions: {versions})")

    # --- scaffolding -----------------------------------------------------------------------------------------

    def _scaffold(self, options: dict[str, Any]) -> None:
        name = options["template"]
        template = GoldenPathTemplate.objects.filter(name=name).first()
        folder = Path(name)
        if template is None and not (folder / "template.yaml").is_file():
            raise CommandError(f"No golden path {name!r} is registered and {name!r} is not a template folder.")
        if template is not None and template.latest is not None:
            golden_path = services.golden_path_for(template.latest)
        else:
            golden_path = load_golden_path(folder)
        values = parse_values(options["set"], golden_path.parameters_schema)
        output = Path(options["output"]) if options["output"] else None
        if output is not None:
            _check_output(output)
        if options["publish"] or options["register"]:
            if template is None:
                raise CommandError("--publish and --register need a registered golden path (see --register-*).")
            self._run_through_portal(template, values, options, output)
            return
        if output is None:
            raise CommandError("--output is required (or use --publish/--register).")
        try:
            files = render_golden_path(golden_path, values)
        except ParameterError as exc:
            raise CommandError(_describe({key: [value] for key, value in exc.errors.items()})) from exc
        write_rendered(files, output)
        message = f"Rendered {len(files)} files from {golden_path.name} {golden_path.version} into {output}"
        if not options["no_git"]:
            identity = parse_author(options["author"] or DEFAULT_AUTHOR)
            subject = f"Scaffold {values.get('name', golden_path.name)} from the {golden_path.name} golden path"
            commit = commit_all(
                output, identity=identity, when=datetime.now(tz=UTC), message=f"{subject} {golden_path.version}"
            )
            message += f" (commit {commit[:12]})"
        self.stdout.write(self.style.SUCCESS(message + "."))

    def _run_through_portal(
        self, template: GoldenPathTemplate, values: dict[str, Any], options: dict[str, Any], output: Path | None
    ) -> None:
        if not options["user"]:
            raise CommandError("--as/--user is required with --publish and --register: the run acts as that person.")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        publisher = ScaffoldRun.Publisher.NONE.value
        if options["publish"]:
            configured = [key for key in available_publishers() if key != ScaffoldRun.Publisher.NONE]
            publisher = options["publisher"] or (configured[0] if configured else "")
            if not publisher:
                raise CommandError("No publisher is configured (SCAFFOLDER_GIT_REMOTE_BASE, _GITHUB_TOKEN, ...).")
        skip = () if options["register"] else ("register_catalog", "request_grants")
        run = services.run_start(
            actor=user, template=template, values=values, publisher=publisher, skip_actions=skip, enqueue=False
        )
        run = services.run_execute(run_id=run.pk) or run
        for step in run.steps.order_by("position"):
            self.stdout.write(f"[{step.status}] {step.name}")
            for line in step.log.splitlines():
                self.stdout.write(f"    {line}")
        if run.state != ScaffoldRun.State.SUCCEEDED:
            raise CommandError(f"Run #{run.pk} failed: {run.error} (retry it from its page or the API).")
        if output is not None:
            commit = services.run_materialise(run=run, folder=output)
            self.stdout.write(f"Wrote the repository (commit {commit[:12]}) into {output}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Run #{run.pk} succeeded." + (f" Repository: {run.repository_url}" if run.repository_url else "")
            )
        )

    # --- updating --------------------------------------------------------------------------------------------

    def _update(self, options: dict[str, Any]) -> None:
        repo = Path(options["update"])
        recorded = read_answers(repo)
        template = GoldenPathTemplate.objects.filter(name=recorded.template).first()
        if template is None or template.latest is None:
            raise CommandError(f"{repo} comes from {recorded.template!r}, which is not registered here.")
        old = services.golden_path_for(services.template_version_find(template=template, version=recorded.version))
        target = (
            services.template_version_find(template=template, version=options["to_version"])
            if options["to_version"]
            else template.latest
        )
        new: GoldenPath = services.golden_path_for(target)
        properties = new.parameters_schema.get("properties", {})
        extra = parse_values(options["set"], {"properties": properties})
        result = update_repository(
            repo, old=old, new=new, identity=parse_author(options["author"] or DEFAULT_AUTHOR), extra_values=extra
        )
        if result.up_to_date:
            self.stdout.write(f"{repo} is up to date with {new.name} {new.version}; nothing to do.")
            return
        if result.dropped_answers:
            self.stdout.write(f"Answers no longer used: {', '.join(result.dropped_answers)}.")
        kept = [f"deleted by the template, changed by you (kept): {path}" for path in result.kept_deleted]
        if result.stopped:
            problems = [f"conflict (marked inline): {path}" for path in result.conflicts] + kept
            raise CommandError(
                f"Stopped updating {repo} from {result.template} {result.from_version} to {result.to_version}: "
                "nothing was committed and the merge is in progress.\n  "
                + "\n  ".join(problems)
                + "\nResolve the conflicts, `git add` them and `git commit` (the message is prepared), "
                "or give up with `git reset --merge`."
            )
        self.stdout.write(
            f"Updated {repo} from {result.template} {result.from_version} to {result.to_version}: "
            f"commit {result.commit[:12] if result.commit else '-'}, {len(result.changed)} file(s) changed."
        )
        for path in result.changed:
            self.stdout.write(f"    {path}")
        for line in kept:
            self.stdout.write(f"    {line}")


def parse_author(text: str) -> Identity:
    match = AUTHOR_PATTERN.match(text.strip())
    if match is None:
        raise CommandError(f'--author must look like "Name <email>"; got {text!r}.')
    return Identity(name=match["name"].strip(), email=match["email"])


def parse_values(pairs: list[str], schema: dict[str, Any]) -> dict[str, Any]:
    """``key=value`` pairs, each converted to the type its schema property asks for."""
    properties = schema.get("properties", {})
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for pair in pairs:
        key, separator, raw = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise CommandError(f"--set expects KEY=VALUE; got {pair!r}.")
        try:
            values[key] = _convert(raw, properties.get(key, {}))
        except ValueError as exc:
            errors[key] = [str(exc)]
    if errors:
        raise CommandError(_describe(errors))
    return values


def _convert(raw: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number; got {raw!r}.") from None
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"must be a number; got {raw!r}.") from None
    if kind == "boolean":
        if raw.strip().lower() in TRUE_WORDS:
            return True
        if raw.strip().lower() in FALSE_WORDS:
            return False
        raise ValueError(f"must be true or false; got {raw!r}.")
    if kind in ("array", "object"):
        if raw.strip().startswith(("[", "{")):
            try:
                return json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"is not valid JSON ({exc.msg}).") from None
        if kind == "array":
            return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _check_output(output: Path) -> None:
    if output.is_symlink():
        raise CommandError(f"{output} is a symlink; give a real folder.")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise CommandError(f"{output} exists and is not empty; the scaffolder never writes over files.")


def _describe(errors: dict[str, list[str]]) -> str:
    return "Invalid parameters:\n" + "\n".join(
        f"  {field}: {message}" for field, messages in errors.items() for message in messages
    )
