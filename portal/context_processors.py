from typing import Any

from django.http import HttpRequest

from portal.roles import SECURITY_REVIEWER, user_has_role, user_is_platform_admin


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    can_audit = bool(user and (user_is_platform_admin(user) or user_has_role(user, SECURITY_REVIEWER)))
    return {"nav_can_audit": can_audit}
