"""Start a real Celery worker process for tests, on the configured broker and the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url_for_current_connection() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def use_broker(app: Any, broker_url: str, transport_options: dict[str, Any]) -> None:
    """Point this process's Celery app at another broker (drops cached connections and producers)."""
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = transport_options
    app._pool = None
    app.amqp._producer_pool = None


class WorkerProcess:
    def __init__(self, *, broker_url: str, var_dir: Path, log_path: Path, concurrency: int = 1) -> None:
        self.broker_url = broker_url
        self.var_dir = var_dir
        self.log_path = log_path
        self.concurrency = concurrency
        self.processes: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
        env.update(
            PORTAL_MODE="test",
            DATABASE_URL=database_url_for_current_connection(),
            CELERY_BROKER_URL=self.broker_url,
            PORTAL_VAR_DIR=str(self.var_dir),
            # Test servers listen on loopback; workers started by tests may reach them.
            SSRF_ALLOWLIST=",".join(sorted({*settings.SSRF_ALLOWLIST, "127.0.0.1"})),
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self, *, name: str | None = None, timeout: float = 60) -> subprocess.Popen[bytes]:
        name = name or f"test-{uuid.uuid4().hex[:6]}"
        log = self.log_path.with_suffix(f".{name}.log")
        handle = log.open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool=prefork",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
                f"--hostname={name}@%h",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()  # the child holds its own descriptor
        process.log_file = log  # type: ignore[attr-defined]
        self.processes.append(process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ready." in log.read_bytes():
                return process
            if process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} did not start:\n{log.read_text(errors='replace')}")

    def kill(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Kill the worker's whole process group (main process and its pool children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop_all(self, warm_timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM: finish the current task); a worker still busy after `warm_timeout` seconds is
        killed, with a warning carrying its log's tail, so a slow shutdown on a loaded machine never fails a test
        whose assertions already ran."""
        for process in self.processes:
            if process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=warm_timeout)
            except subprocess.TimeoutExpired:
                tail = Path(process.log_file).read_text(errors="replace")[-3000:]  # type: ignore[attr-defined]
                warnings.warn(f"worker {process.pid} ignored SIGTERM for {warm_timeout} s; killed.\n{tail}",
                              stacklevel=2)  # fmt: skip
                self.kill(process)

    def log(self) -> str:
        return "\n".join(
            Path(process.log_file).read_text(errors="replace")  # type: ignore[attr-defined]
            for process in self.processes
        )

    def queue_depth_hint(self) -> int | None:
        return None
