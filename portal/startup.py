"""What a long-lived process loads once before it serves, so no request or task waits for it."""

from __future__ import annotations

import gc


def load_then_freeze() -> None:
    """Load the URLconf, then freeze every object loaded so far.

    The URLconf imports every view and the MCP SDK (agents_api.mcp_server): 0.7 s of CPU that a web worker's first
    request, or each Celery child's first task (notifications reverse URLs), waited for (first GET /login/ after
    boot: 0.90 s -> 0.14 s). What is loaded lives as long as the process: frozen, the collector's full passes skip
    it (in the web workers they walked it with the GIL held, 100-650 ms each, a few times a minute under load:
    bench.catalog, API search with every answer computed at 8 clients, p95 170-295 ms with those pauses, 68-93 ms
    without), and forked children keep sharing its pages."""
    from django.urls import reverse

    reverse("portal:dashboard")
    gc.collect()
    gc.freeze()
