"""Types shared by the apps' services and selectors.

The project uses Django's default user model (settings.AUTH_USER_MODEL is not set, so it is ``auth.User``). Actors
are typed with the concrete ``User`` so that lookups and foreign keys (``user=actor``, ``reviewer=actor``) type-check;
``AbstractBaseUser`` has no groups, no pk type the model fields accept, and is what ``request.user`` narrows to only
after ``is_authenticated``.
"""

from __future__ import annotations

from django.contrib.auth.models import User

__all__ = ["User"]
