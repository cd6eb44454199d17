"""The portal served by real gunicorn workers on loopback, for live tests and the grant check benchmark.

with PortalServer(database_url=..., var_dir=tmp_path, workers=2) as server:
    requests.post(server.url("/api/v1/grants/check/"), ...)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PortalServer:
    def __init__(
        self,
        *,
        database_url: str,
        var_dir: Path,
        workers: int = 2,
        threads: int = 4,
        extra_env: dict[str, str] | None = None,
        access_log: Path | None = None,
    ) -> None:
        self.database_url = database_url
        self.var_dir = var_dir
        self.workers = workers
        self.threads = threads
        self.extra_env = extra_env or {}
        self.access_log = access_log
        self.port = free_port()
        self.log_path = var_dir / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
        env.update(
            PORTAL_MODE="test",
            DATABASE_URL=self.database_url,
            PORTAL_VAR_DIR=str(self.var_dir),
            WEB_CONCURRENCY=str(self.workers),
            WEB_THREADS=str(self.threads),
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def __enter__(self) -> Self:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "-c", "gunicorn.conf.py",
                 "--bind", f"127.0.0.1:{self.port}", "--access-logfile", str(self.access_log or "/dev/null")],
                cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(self.url("/healthz"), timeout=10).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
