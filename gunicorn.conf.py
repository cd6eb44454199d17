"""gunicorn settings for production; PORT, WEB_CONCURRENCY and WEB_THREADS come from the environment."""

import importlib
import os
import sys

from gunicorn.glogging import Logger

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# One worker per core of a 2-core host, 2 threads each. Measured against 3 x 4 on 2 cores, alternately: the grant
# check's p95 at 8 clients 4.0-4.6 against 4.7-7.2 ms, and every catalog page and API figure of bench.catalog at
# 8 clients as good or better (catalog page p95 97-145 against 156-176 ms at 20k): fewer threads contend for each
# process's GIL. On a larger host set WEB_CONCURRENCY to its cores.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "2"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 30
# Workers are recycled to bound slow leaks. Not every 5,000 requests: gateways ask the grant check before every tool
# call (over 1,000 requests/s on 2 cores), so a worker lived two seconds, and each recycle cost a boot (about a
# second of CPU) and dropped the worker's grant index, token cache and kept-alive connections.
max_requests = 200_000
max_requests_jitter = 20_000
accesslog = "-"
# Grant checks answered in front of Django (agents_api.front) are left out of the access log unless this is set: a
# gateway asks before every tool call, thousands of times a second, and formatting those lines was about 15% of a
# worker's on-CPU samples at 8 clients (py-spy). They are counted by verdict in portal_grant_checks_total, and every denial is a runtime
# finding. Requests the front hands to Django (errors, a token seen for the first time) are logged as any other.
access_log_grant_checks = os.environ.get("WEB_ACCESS_LOG_GRANT_CHECKS", "").lower() in {"1", "true", "yes"}
ANSWERED_IN_FRONT = "portal.grant_check_answered_in_front"  # the environ key agents_api.front sets


class PortalLogger(Logger):
    def access(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        if access_log_grant_checks or not environ.get(ANSWERED_IN_FRONT):
            super().access(resp, req, environ, request_time)


logger_class = PortalLogger
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    # Prometheus multiprocess mode: drop the dead worker's live gauges.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_starting(server):  # type: ignore[no-untyped-def]
    # Load the settings in the arbiter before any worker boots: a missing or invalid setting is one line naming it
    # and exit status 1, instead of a traceback per worker and a crash loop.
    from django.core.exceptions import ImproperlyConfigured

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    try:
        importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"gunicorn: configuration error: {exc}\n")
        sys.stderr.flush()
        os._exit(1)
