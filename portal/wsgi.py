import os

from django.core.wsgi import get_wsgi_application

from portal.startup import load_then_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

django_application = get_wsgi_application()

# The call-time grant check is answered in front of Django's handler (agents_api/front.py says why and how).
from agents_api.front import GrantCheckFront  # noqa: E402  (needs the apps loaded above)

application = GrantCheckFront(django_application)

# gunicorn imports this module in each worker as it boots: what it keeps is loaded now, not in its first requests.
load_then_freeze()
