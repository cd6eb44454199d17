"""Roles are Django groups, so permissions and object permissions can be granted to them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import models

ENGINEER = "engineer"
SECURITY_REVIEWER = "security-reviewer"
SECURITY_LEAD = "security-lead"
DATA_OWNER = "data-owner"
BUSINESS_OWNER = "business-owner"
PLATFORM_ADMIN = "platform-admin"

ROLE_GROUPS = (ENGINEER, SECURITY_REVIEWER, SECURITY_LEAD, DATA_OWNER, BUSINESS_OWNER, PLATFORM_ADMIN)


def role_group(role: str) -> Group:
    group, _ = Group.objects.get_or_create(name=role)
    return group


def user_has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    if not user.is_authenticated:
        return False
    # All of the user's groups at once, cached on the user object for the request (or task) it belongs to.
    roles: frozenset[str] | None = user.__dict__.get("_portal_roles")
    if roles is None:
        roles = frozenset(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        user.__dict__["_portal_roles"] = roles
    return role in roles


def user_is_platform_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    if user.__dict__.get("_portal_without_platform_admin"):
        return False
    return bool(getattr(user, "is_superuser", False)) or user_has_role(user, PLATFORM_ADMIN)


def act_without_platform_admin(user: AbstractBaseUser) -> None:
    """For the rest of this request (or task) the user acts without the platform-admin role: an API token
    without the `admin` scope. Only this in-memory user object changes, never the stored user."""
    user.__dict__["_portal_without_platform_admin"] = True
    user.__dict__["_portal_roles"] = frozenset(user.groups.values_list("name", flat=True)) - {PLATFORM_ADMIN}  # type: ignore[attr-defined]


def grant_object_permission(permission: str, group: Group, obj: models.Model) -> None:
    """Give a whole team (its group) a django-guardian permission on one object."""
    from guardian.shortcuts import assign_perm

    assign_perm(permission, group, obj)
