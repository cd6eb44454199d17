"""Throwaway PostgreSQL and Redis on loopback for benchmarks (as .ci/run does), unless URLs are given."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


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
