"""What a process loads once as it starts, so no task or request waits for it (portal.startup). Each test runs a
fresh interpreter: in this one the test client has loaded the URLconf long ago."""

from __future__ import annotations

import os
import subprocess
import sys


def _in_a_fresh_interpreter(script: str) -> None:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_worker_loads_the_urlconf_before_it_forks_its_children() -> None:
    _in_a_fresh_interpreter(
        "import sys, django; django.setup(); import portal.celery as c; "
        "assert 'agents_api.mcp_server' not in sys.modules, 'loaded before the worker started'; "
        "c._load_before_fork(); assert 'agents_api.mcp_server' in sys.modules; print('ok')"
    )


def test_a_web_worker_loads_the_urlconf_as_it_boots_and_freezes_what_it_loaded() -> None:
    _in_a_fresh_interpreter(
        "import gc, sys; import portal.wsgi; assert 'agents_api.mcp_server' in sys.modules; "
        "assert gc.get_freeze_count() > 50_000, gc.get_freeze_count(); print('ok')"
    )
