"""Team writes: a team is backed by two groups, all members and maintainers; object permissions go to those."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from catalog.models import Team, TeamMembership
from portal.audit import audit_record
from portal.types import User

logger = logging.getLogger(__name__)

TEAM_GROUP_PREFIX = "team:"


def members_group_name(team_name: str) -> str:
    return f"{TEAM_GROUP_PREFIX}{team_name}"


def maintainers_group_name(team_name: str) -> str:
    return f"{TEAM_GROUP_PREFIX}{team_name}:maintainers"


def _maintainer_rows(*, user_id: Any, team_id: Any) -> QuerySet[TeamMembership]:
    return TeamMembership.objects.filter(team_id=team_id, user_id=user_id, role=TeamMembership.Role.MAINTAINER)


def maintains_team(*, user_id: Any, team_id: Any) -> bool:
    """Whether the user maintains the team: the owning team's maintainers may change its agents and tools
    (services.entity_access, permissions.OwningTeamBackend) and file requests for it (services.can_create_for)."""
    return _maintainer_rows(user_id=user_id, team_id=team_id).exists()


def maintained_by(user_id: Any) -> Exists:
    """The same rule as maintains_team, as an annotation of a Team query (a caller loading the team anyway)."""
    return Exists(_maintainer_rows(user_id=user_id, team_id=OuterRef("pk")))


@transaction.atomic
def team_create(
    *, name: str, title: str = "", description: str = "", email: str = "", source_key: str = "", actor: Any = None
) -> Team:
    """Create a team and its two groups. `actor=None` is the system; people must be platform admins."""
    from catalog.services import CatalogError, CatalogPermissionError
    from portal.roles import user_is_platform_admin

    if actor is not None and not user_is_platform_admin(actor):
        raise CatalogPermissionError("Only platform admins create teams.")
    team = Team(name=name.strip().lower(), title=title, description=description, email=email, source_key=source_key)
    if Team.objects.filter(name__iexact=team.name).exists():
        raise CatalogError({"name": [f"team {team.name!r} already exists."]})
    try:
        team.clean_fields(exclude=["members_group", "maintainers_group", "parent"])
    except ValidationError as exc:
        raise CatalogError({field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}) from exc
    team.members_group = Group.objects.get_or_create(name=members_group_name(team.name))[0]
    team.maintainers_group = Group.objects.get_or_create(name=maintainers_group_name(team.name))[0]
    team.save()
    audit_record(action="catalog.team.created", target=team, changes={"name": team.name, "title": title})
    return team


@transaction.atomic
def team_set_member(*, team: Team, user: User, role: str = TeamMembership.Role.MEMBER) -> TeamMembership:
    if role not in TeamMembership.Role.values:
        raise ValueError(f"role must be one of {', '.join(TeamMembership.Role.values)}; got {role!r}")
    membership, created = TeamMembership.objects.get_or_create(team=team, user=user, defaults={"role": role})
    previous = None if created else membership.role
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    user.groups.add(team.members_group)  # type: ignore[attr-defined]
    if role == TeamMembership.Role.MAINTAINER:
        user.groups.add(team.maintainers_group)  # type: ignore[attr-defined]
    else:
        user.groups.remove(team.maintainers_group)  # type: ignore[attr-defined]
    if created or previous != role:
        audit_record(
            action="catalog.team.member_set",
            target=team,
            changes={"user": user.get_username(), "role": {"before": previous, "after": role}},
        )
    return membership


@transaction.atomic
def team_remove_member(*, team: Team, user: User) -> None:
    deleted, _ = TeamMembership.objects.filter(team=team, user=user).delete()
    user.groups.remove(team.members_group, team.maintainers_group)  # type: ignore[attr-defined]
    if deleted:
        audit_record(action="catalog.team.member_removed", target=team, changes={"user": user.get_username()})


@transaction.atomic
def team_memberships_sync(
    *, user: User, wanted: Mapping[str, str], managed: Iterable[str]
) -> dict[str, dict[str, str | None]]:
    """Make the user's memberships of the `managed` teams exactly `wanted` ({team: role}); teams outside `managed`
    are left as admins set them. Single sign-on calls this at every sign-in (portal.sso)."""
    managed = list(managed)
    held = dict(TeamMembership.objects.filter(user=user, team__name__in=managed).values_list("team__name", "role"))
    changes: dict[str, dict[str, str | None]] = {}
    for team in Team.objects.filter(name__in=managed):
        before, after = held.get(team.name), wanted.get(team.name)
        if before == after:
            continue
        if after is None:
            team_remove_member(team=team, user=user)
        else:
            team_set_member(team=team, user=user, role=after)
        changes[team.name] = {"before": before, "after": after}
    missing = sorted(set(wanted) - set(Team.objects.filter(name__in=list(wanted)).values_list("name", flat=True)))
    if missing:
        logger.warning("OIDC_GROUP_MAP names teams the catalog does not have: %s", ", ".join(missing))
    return changes
