import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

django_application = get_wsgi_application()

# The call-time grant check is answered in front of Django's handler (agents_api/front.py says why and how).
from agents_api.front import GrantCheckFront  # noqa: E402  (needs the apps loaded above)

application = GrantCheckFront(django_application)
