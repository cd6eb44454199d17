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
    cache: dict[str, bool] = user.__dict__.setdefault("_portal_role_cache", {})
    if role not in cache:
        cache[role] = user.groups.filter(name=role).exists()  # type: ignore[attr-defined]
    return cache[role]


def user_is_platform_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(getattr(user, "is_superuser", False)) or user_has_role(user, PLATFORM_ADMIN)


def grant_object_permission(permission: str, group: Group, obj: models.Model) -> None:
    """Give a whole team (its group) a django-guardian permission on one object."""
    from guardian.shortcuts import assign_perm

    assign_perm(permission, group, obj)
