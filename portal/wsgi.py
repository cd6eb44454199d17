import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import reverse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

django_application = get_wsgi_application()

# The call-time grant check is answered in front of Django's handler (agents_api/front.py says why and how).
from agents_api.front import GrantCheckFront  # noqa: E402  (needs the apps loaded above)

application = GrantCheckFront(django_application)

# What a web worker keeps, loaded as it boots rather than in its first requests (gunicorn imports this module in
# each worker), as the Celery worker does in portal.celery:
# - the URLconf, with every view and the MCP SDK (agents_api.mcp_server): 0.7 s of CPU that a worker's first request
#   waited for (0.90 s -> 0.14 s for the first GET /login/);
# - then all of it frozen: it lives as long as the worker, and left in the collector's sight it made every full
#   pass walk it with the worker's GIL held, 100-650 ms each, a few times a minute under load (bench.catalog, API
#   search, every answer computed, 8 clients over gunicorn 2 x 2 at 20k: p95 170-295 ms with those pauses,
#   68-93 ms without).
reverse("portal:dashboard")
gc.collect()
gc.freeze()
