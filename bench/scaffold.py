"""Scaffolder speed: render and commit `python-agent`, and a whole run up to catalog registration.

1. Render + write + git commit of `python-agent`, median of 20, three ways:
   - the portal: the sandboxed engine (`render_golden_path`, `write_rendered`) and the run's reproducible commit;
   - the floor: a bare `jinja2.Environment` rendering the same files, plain writes, `git init/add/commit`;
   - copier rendering the same template (converted to a `copier.yml`), plus the same git commands, timed inside
     its own throwaway virtualenv under /tmp (installed with pip; skipped with a message when that fails).
   Floors: the portal at most 1.5x the bare floor, and faster than copier.
2. A whole run through Celery (`task_always_eager=True`, so in this process) on PostgreSQL: start -> render ->
   commit -> publish to a local bare repository -> register in the catalog (+ onboarding and grant requests).
   Floor: p50 of start-to-registration at most 2 s.

Run: `python -m bench.scaffold` (a throwaway PostgreSQL unless BENCH_DATABASE_URL). BENCH_SCAFFOLD_RUNS (20),
BENCH_COPIER_VENV (/tmp/bench-copier) adjust it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.services import percentile, postgres, setup_django

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_PATH = ROOT / "golden_paths" / "python-agent"
RUNS = int(os.environ.get("BENCH_SCAFFOLD_RUNS", "20"))
COPIER_VENV = Path(os.environ.get("BENCH_COPIER_VENV") or Path(tempfile.gettempdir()) / "bench-copier")
VALUES: dict[str, Any] = {
    "name": "bench-agent",
    "description": "Benchmarks the scaffolder.",
    "owner": "bench",
    "agent_type": "sre",
    "tools": ["github"],
}
WHEN = datetime(2025, 1, 1, tzinfo=UTC)
# The floor and copier commit exactly as the portal does (no hook templates copied, no signing).
GIT_COMMANDS = (
    ["init", "-q", "--template="],
    ["add", "--all"],
    ["commit", "-q", "--no-verify", "-m", "Scaffold bench-agent"],
)


def _git_env() -> dict[str, str]:
    from scaffolder.git import Identity, git_environment

    return git_environment(identity=Identity("Bench", "bench@example.com"), when=WHEN)


# --- 1. render and commit ----------------------------------------------------------------------------------------


def _portal_once(golden_path: Any, folder: Path) -> None:
    from scaffolder.git import Identity, commit_all
    from scaffolder.rendering import render_golden_path, write_rendered

    write_rendered(render_golden_path(golden_path, VALUES), folder)
    commit_all(folder, identity=Identity("Bench", "bench@example.com"), when=WHEN, message="Scaffold bench-agent")


def _bare_once(sources: dict[str, str], context: dict[str, Any], folder: Path, env: dict[str, str]) -> None:
    import jinja2

    environment = jinja2.Environment(  # noqa: S701 - the unsandboxed floor, on our own template, for comparison
        loader=jinja2.DictLoader(sources), keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    for path, text in sources.items():
        target = "/".join(
            environment.from_string(part).render(context) if "{{" in part else part for part in path.split("/")
        )
        destination = folder / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(environment.from_string(text).render(context), encoding="utf-8")
    for command in GIT_COMMANDS:
        subprocess.run(["git", *command], cwd=folder, env=env, check=True, capture_output=True)


def _template_sources() -> dict[str, str]:
    files = GOLDEN_PATH / "files"
    return {
        path.relative_to(files).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(files.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _timed(action: Any, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="bench-scaffold-")) / "out"
        folder.mkdir()
        started = time.perf_counter()
        action(folder)
        timings.append(time.perf_counter() - started)
        shutil.rmtree(folder.parent)
    return timings


COPIER_DRIVER = textwrap.dedent(
    """
    import json, shutil, subprocess, sys, tempfile, time
    from pathlib import Path
    from copier import run_copy

    template, runs, data, env = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
    commands = json.loads(sys.argv[5])
    timings, files = [], []
    for _ in range(runs):
        folder = Path(tempfile.mkdtemp(prefix="bench-copier-")) / "out"
        started = time.perf_counter()
        run_copy(template, folder, data=data, defaults=True, overwrite=True, quiet=True, unsafe=True)
        for command in commands:
            subprocess.run(["git", *command], cwd=folder, env=env, check=True, capture_output=True)
        timings.append(time.perf_counter() - started)
        files = {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts}
        shutil.rmtree(folder.parent)
    print(json.dumps({"timings": timings, "files": files}))
    """
)


def _copier_template(golden_path: Any, folder: Path) -> Path:
    """The same template in copier's format: questions from the JSON Schema, the same files/ tree."""
    import yaml

    kinds = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "array": "yaml"}
    questions: dict[str, Any] = {"_subdirectory": "files", "_templates_suffix": "", "_answers_file": ".copier-answers"}
    for name, schema in golden_path.parameters_schema["properties"].items():
        question: dict[str, Any] = {"type": kinds[schema["type"]]}
        if "default" in schema:
            question["default"] = schema["default"]
        questions[name] = question
    for name, expression in golden_path.computed:
        questions[name] = {"type": "str", "default": "{{ " + expression + " }}", "when": False}
    shutil.copytree(GOLDEN_PATH / "files", folder / "files", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "copier.yml").write_text(yaml.safe_dump(questions, sort_keys=False), encoding="utf-8")
    return folder


def _copier_timings(golden_path: Any) -> tuple[list[float], dict[str, str]] | str:
    python = COPIER_VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(COPIER_VENV)], capture_output=True, check=False)
        if made.returncode != 0:
            return f"could not create {COPIER_VENV}: {made.stderr.decode(errors='replace')[-300:]}"
    if subprocess.run([str(python), "-c", "import copier"], capture_output=True, check=False).returncode != 0:
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "copier"], capture_output=True, check=False
        )
        if installed.returncode != 0:
            return f"pip install copier failed: {installed.stderr.decode(errors='replace')[-300:]}"
    with tempfile.TemporaryDirectory(prefix="bench-copier-template-") as scratch:
        template = _copier_template(golden_path, Path(scratch))
        result = subprocess.run(
            [
                str(python),
                "-c",
                COPIER_DRIVER,
                str(template),
                str(RUNS),
                json.dumps(VALUES),
                json.dumps(_git_env()),
                json.dumps(GIT_COMMANDS),
            ],
            capture_output=True,
            check=False,
        )
    if result.returncode != 0:
        return f"copier failed: {result.stderr.decode(errors='replace')[-500:]}"
    answer = json.loads(result.stdout)
    return [float(value) for value in answer["timings"]], answer["files"]


def render_and_commit() -> dict[str, float]:
    from scaffolder.manifest import load_golden_path, validate_parameters

    started = time.perf_counter()
    golden_path = load_golden_path(GOLDEN_PATH)
    load_seconds = time.perf_counter() - started
    portal = _timed(lambda folder: _portal_once(golden_path, folder), RUNS)
    context = validate_parameters(golden_path, VALUES) | {"package": VALUES["name"].replace("-", "_")}
    sources, env = _template_sources(), _git_env()
    bare = _timed(lambda folder: _bare_once(sources, context, folder, env), RUNS)
    copier = _copier_timings(golden_path)

    portal_median, bare_median = statistics.median(portal), statistics.median(bare)
    print(f"render + commit python-agent, median of {RUNS} ({len(sources)} template files):")
    print(f"  portal (sandboxed engine + reproducible commit) {portal_median * 1000:8.1f} ms")
    print(f"  bare Jinja2 + git init/add/commit (floor)      {bare_median * 1000:8.1f} ms")
    ratio = portal_median / bare_median
    print(f"  portal / floor = {ratio:.2f}x  (target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})")
    print(f"  (loading and checking the template once, as a worker does per version: {load_seconds * 1000:.1f} ms)")
    figures = {"portal_ms": portal_median * 1000, "bare_ms": bare_median * 1000, "ratio": ratio}
    if isinstance(copier, str):
        print(f"  copier: skipped ({copier.strip()})")
    else:
        copier_median = statistics.median(copier[0])
        faster = portal_median < copier_median
        print(f"  copier (run_copy + the same git commands)      {copier_median * 1000:8.1f} ms")
        print(f"  copier output matches the portal's: {_same_output(golden_path, copier[1])}")
        print(f"  portal vs copier: {copier_median / portal_median:.1f}x faster ({'met' if faster else 'MISSED'})")
        figures["copier_ms"] = copier_median * 1000
    return figures


def _same_output(golden_path: Any, copier_files: dict[str, str]) -> str:
    from scaffolder.golden_path import ANSWERS_FILENAME
    from scaffolder.rendering import render_golden_path

    ours = {path: content.decode() for path, content in render_golden_path(golden_path, VALUES).items()}
    ours.pop(ANSWERS_FILENAME)
    theirs = {path: text for path, text in copier_files.items() if not path.startswith(".copier-answers")}
    differing = sorted(path for path in ours.keys() | theirs.keys() if ours.get(path) != theirs.get(path))
    return f"yes, {len(ours)} identical files" if not differing else f"NO, {len(differing)} differ: {differing[:5]}"


# --- 2. a whole run ----------------------------------------------------------------------------------------------


def whole_runs(database_url: str) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-scaffold-runs-"))
    os.environ["PORTAL_VAR_DIR"] = str(scratch / "var")
    setup_django(database_url)
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    remotes = scratch / "remotes"
    remotes.mkdir()
    settings.SCAFFOLDER_WORK_DIR = str(scratch / "work")
    settings.SCAFFOLDER_GIT_REMOTE_BASE = str(remotes)

    from django.contrib.auth import get_user_model

    from catalog import services as catalog
    from catalog.teams import team_create, team_set_member
    from portal.celery import app
    from scaffolder import registering, services
    from scaffolder.models import GoldenPathTemplate, RunStep, ScaffoldRun

    user = get_user_model().objects.create_user("bench", email="bench@example.com", first_name="Bench")
    team = team_create(name="bench", title="Bench")
    team_set_member(team=team, user=user, role="maintainer")
    catalog.tool_create(actor=user, data={"name": "github", "owner": "bench", "kind": "cli", "description": "x"})
    registering.templates_register_builtin()
    template = GoldenPathTemplate.objects.get(name="python-agent")
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False

    to_registration, whole = [], []
    try:
        for index in range(RUNS):
            name = f"bench-agent-{index}"
            subprocess.run(["git", "init", "--bare", "-q", str(remotes / f"{name}.git")], check=True)
            started = time.perf_counter()
            run = services.run_start(actor=user, template=template, values={**VALUES, "name": name}, publisher="git")
            whole.append(time.perf_counter() - started)  # eager: the run is done when run_start returns
            run = ScaffoldRun.objects.get(pk=run.pk)
            if run.state != ScaffoldRun.State.SUCCEEDED:
                raise SystemExit(f"run {run.pk} failed: {run.error}")
            registered = RunStep.objects.get(run=run, action="register_catalog").finished_at
            assert registered is not None
            # created_at is stamped at the start of run_start, so this is start -> registration.
            to_registration.append((registered - run.created_at).total_seconds())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    p50 = percentile(to_registration, 0.5)
    print(f"\nwhole run through Celery (task_always_eager=True, in-process), PostgreSQL, {RUNS} runs:")
    print(
        f"  start -> registered in the catalog (with onboarding):  p50 {p50:.3f} s  p95 {percentile(to_registration, 0.95):.3f} s"
    )
    print(f"  start -> done (incl. grant requests):                  p50 {percentile(whole, 0.5):.3f} s")
    print(f"  target p50 <= 2 s: {'met' if p50 <= 2 else 'MISSED'}")
    return {"run_p50_s": p50}


def main() -> None:
    os.environ.setdefault("PORTAL_MODE", "test")
    sys.path.insert(0, str(ROOT))
    render_and_commit()  # the engine only; no Django
    with postgres() as database_url:
        whole_runs(database_url)


if __name__ == "__main__":
    main()
