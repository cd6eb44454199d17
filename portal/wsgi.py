import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

django_application = get_wsgi_application()

# The URLconf loads as the worker boots, not inside its first request: it imports the MCP SDK
# (agents_api.mcp_server), 0.7 s of CPU that a user's first request to each new worker would otherwise wait for.
from django.urls import reverse  # noqa: E402  (needs the apps loaded above)

reverse("portal:dashboard")

# The call-time grant check is answered in front of Django's handler (agents_api/front.py says why and how).
from agents_api.front import GrantCheckFront  # noqa: E402  (needs the apps loaded above)

application = GrantCheckFront(django_application)
