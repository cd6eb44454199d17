"""Owners' maintainers hold one object permission per entity (change), which editing and deleting both check."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from guardian.models import GroupObjectPermission
from guardian.shortcuts import assign_perm, get_perms

from catalog import selectors, services
from catalog.models import TeamMembership
from catalog.teams import team_set_member
from portal.roles import PLATFORM_ADMIN, user_is_platform_admin

pytestmark = pytest.mark.django_db


def _tool(owner: Any, team: Any, name: str = "reader") -> Any:
    return services.tool_create(
        actor=owner,
        data={"name": name, "owner": team.name, "kind": "http_api", "description": "Reads.", "version": "1.0.0"},
    )


def test_a_new_tool_gives_its_owners_maintainers_only_the_change_permission(
    make_user: Callable[..., Any], make_team: Callable[..., Any]
) -> None:
    owner = make_user("olive")
    team = make_team("payments", maintainers=[owner])
    tool = _tool(owner, team)

    rows = GroupObjectPermission.objects.filter(object_pk=str(tool.pk))
    assert [(row.group_id, row.permission.codename) for row in rows] == [(team.maintainers_group_id, "change_tool")]
    assert services.can_edit(owner, tool)
    services.tool_delete(actor=owner, tool=tool)  # deleting checks the same permission


def test_a_non_owner_can_neither_edit_nor_delete(make_user: Callable[..., Any], make_team: Callable[..., Any]) -> None:
    owner, stranger = make_user("olive"), make_user("sam")
    tool = _tool(owner, make_team("payments", maintainers=[owner]))
    make_team("other", maintainers=[stranger])

    assert not services.can_edit(stranger, tool)
    with pytest.raises(services.CatalogPermissionError):
        services.tool_delete(actor=stranger, tool=tool)


def test_the_migration_removes_the_unread_delete_permissions_and_keeps_change(
    make_user: Callable[..., Any], make_team: Callable[..., Any]
) -> None:
    owner = make_user("olive")
    team = make_team("payments", maintainers=[owner])
    tool = _tool(owner, team)
    assign_perm("catalog.delete_tool", team.maintainers_group, tool)  # what earlier releases granted

    migration = importlib.import_module("catalog.migrations.0005_drop_delete_object_permissions")
    migration.forward(apps, None)

    codenames = GroupObjectPermission.objects.filter(object_pk=str(tool.pk)).values_list(
        "permission__codename", flat=True
    )
    assert list(codenames) == ["change_tool"]


def test_the_page_query_answers_who_may_edit_as_guardian_and_the_memberships_do(
    make_user: Callable[..., Any], make_team: Callable[..., Any], django_assert_num_queries: Any
) -> None:
    owner = make_user("olive")
    team = make_team("payments", maintainers=[owner])
    tool = _tool(owner, team)
    agent = services.agent_create(actor=owner, data={"name": "helper", "owner": team.name})
    direct = make_user("dora")
    assign_perm("catalog.change_tool", direct, tool)
    assign_perm("catalog.change_agent", direct, agent)
    member, inactive = make_user("mia"), make_user("ivan", is_active=False)
    team_set_member(team=team, user=member, role="member")
    team_set_member(team=team, user=inactive, role="maintainer")
    stranger = make_user("sam")
    make_team("other", maintainers=[stranger])
    admin, superuser = make_user("ada", roles=[PLATFORM_ADMIN]), make_user("sue", is_superuser=True)

    for user in (owner, direct, member, inactive, stranger, admin, superuser):
        for entity, page_detail in ((tool, selectors.tool_page_detail), (agent, selectors.agent_page_detail)):
            may_edit = user_is_platform_admin(user) or f"change_{entity._meta.model_name}" in get_perms(user, entity)
            may_file = (
                user_is_platform_admin(user)
                or TeamMembership.objects.filter(team=team, user=user, role=TeamMembership.Role.MAINTAINER).exists()
            )
            assert services.can_edit(user, entity) is may_edit, (user.username, entity)
            loaded = page_detail(name=entity.name, user=user)
            with django_assert_num_queries(0):
                assert services.can_edit(user, loaded) is may_edit, (user.username, entity)
                assert services.can_create_for(user, loaded.owner) is may_file, (user.username, entity)
    assert not services.can_edit(stranger, selectors.tool_page_detail(name=tool.name, user=owner)), "not owner's"
