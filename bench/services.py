"""Throwaway PostgreSQL and Redis on loopback for benchmarks (as .ci/run does), unless URLs are given."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql) and BENCH_DATABASE_URL is unset.")
    return candidates[-1].parent


def _as_pg_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Yield a DATABASE_URL for an empty database; BENCH_DATABASE_URL wins if set."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    pg_bin = _pg_bin()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    workdir.chmod(0o755)
    data = workdir / "data"
    data.mkdir()
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(
        _as_pg_user(
            [str(pg_bin / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=512MB"
    subprocess.run(
        _as_pg_user([str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o", options, "start"]),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_pg_user([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "bench"]),
            check=True,
            capture_output=True,
        )
        yield f"postgres://{user}@127.0.0.1:{port}/bench"
    finally:
        subprocess.run(
            _as_pg_user([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[str]:
    given = os.environ.get("BENCH_BROKER_URL")
    if given:
        yield given
        return
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed (apt-get install redis-server) and BENCH_BROKER_URL is unset.")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def setup_django(database_url: str, broker_url: str = "memory://") -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["CELERY_BROKER_URL"] = broker_url
    os.environ.setdefault("PORTAL_MODE", "test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _process_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds including reaped children, command line) for every live process."""
    ticks = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        parent = int(fields[1])
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        table[int(entry.name)] = (parent, (utime + stime + cutime + cstime) / ticks, cmdline)
    return table


def cpu_seconds(groups: dict[str, str]) -> dict[str, float]:
    """CPU seconds used so far by process trees, each group's roots found by a substring of their command line
    ("self" is this process, without the other groups' trees below it). The difference between two calls is
    what a benchmark phase cost, whatever else the machine was doing: steadier than wall time on a shared
    2-core machine."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)

    def is_root(pid: int, marker: str) -> bool:
        parent = table[pid][0]
        return marker in table[pid][2] and not (parent in table and marker in table[parent][2])

    roots = {
        group: [os.getpid()] if marker == "self" else [pid for pid in table if is_root(pid, marker)]
        for group, marker in groups.items()
    }
    claimed = {pid for group, pids in roots.items() if groups[group] != "self" for pid in pids}
    result: dict[str, float] = {}
    for group, pids in roots.items():
        total, stack = 0.0, list(pids)
        while stack:
            pid = stack.pop()
            total += table[pid][1]
            stack.extend(child for child in children.get(pid, []) if child not in claimed)
        result[group] = total
    return result


class HostSteal:
    """The share of this VM's CPU time the hypervisor gave to others ("steal" in /proc/stat) between start() and
    text(). On a shared 2-core VM it rises to 10-25% at times, and latency tails grow with it: printed with each
    phase so a slow figure can be told from a slow run."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> list[int]:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return []
        return [int(value) for value in fields]

    def share(self) -> float | None:
        end = self._read()
        if not end or not self._start or len(end) < 8:
            return None
        spent = [after - before for before, after in zip(self._start, end, strict=False)]
        total = sum(spent[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
        return spent[7] / total if total else None

    def text(self) -> str:
        share = self.share()
        return "" if share is None else f"; host steal {share:.0%}"


def figures_of_tree(tree: Path, command: list[str], environment: dict[str, str], name: str) -> dict[str, Any]:
    """Run a benchmark's `measure` command in another code tree; echo its lines, prefixed with `name`, and return the
    figures it printed as its `FIGURES {json}` line. For the side-by-side runs (`--old PATH`) of bench.catalog and
    bench.approvals: the parent calls it, so the tree measured needs no copy of it."""
    process = subprocess.Popen(command, cwd=tree, env=environment, stdout=subprocess.PIPE, text=True)
    figures: dict[str, Any] = {}
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("FIGURES "):
            figures = json.loads(line[len("FIGURES ") :])
        else:
            print(f"[{name}] {line}", end="", flush=True)
    if process.wait() != 0:
        raise SystemExit(f"measuring {tree} failed")
    return figures
