"""Owners' maintainers may edit and delete their agents and tools because they maintain the owner; guardian holds
only permissions given explicitly. Editing and deleting both check `services.can_edit`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from guardian.models import GroupObjectPermission
from guardian.shortcuts import assign_perm, get_perms, remove_perm

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


def test_a_new_tool_writes_no_permission_row_and_its_maintainers_may_edit_and_delete_it(
    make_user: Callable[..., Any], make_team: Callable[..., Any]
) -> None:
    owner = make_user("olive")
    team = make_team("payments", maintainers=[owner])
    tool = _tool(owner, team)

    assert not GroupObjectPermission.objects.exists()
    assert services.can_edit(owner, tool)
    assert owner.has_perm("catalog.change_tool", tool)  # Django's own API agrees (catalog.permissions)
    assert not owner.has_perm("catalog.delete_tool", tool)  # deleting checks can_edit, i.e. the change right
    services.tool_delete(actor=owner, tool=tool)


def test_a_non_owner_can_neither_edit_nor_delete(make_user: Callable[..., Any], make_team: Callable[..., Any]) -> None:
    owner, stranger, member = make_user("olive"), make_user("sam"), make_user("mia")
    team = make_team("payments", maintainers=[owner], members=[member])
    tool = _tool(owner, team)
    make_team("other", maintainers=[stranger])

    for user in (stranger, member):
        assert not services.can_edit(user, tool)
        assert not user.has_perm("catalog.change_tool", tool)
        with pytest.raises(services.CatalogPermissionError):
            services.tool_delete(actor=user, tool=tool)


def test_the_right_to_edit_moves_with_ownership_and_leaves_with_the_maintainer(
    make_user: Callable[..., Any], make_team: Callable[..., Any]
) -> None:
    old_owner, new_owner = make_user("olive"), make_user("nina")
    admin = make_user("ada", roles=[PLATFORM_ADMIN])
    payments = make_team("payments", maintainers=[old_owner])
    platform = make_team("platform", maintainers=[new_owner])
    tool = _tool(old_owner, payments)

    tool = services.tool_update(actor=admin, tool=tool, data={"owner": platform.name})

    assert services.can_edit(new_owner, tool) and not services.can_edit(old_owner, tool)
    team_set_member(team=platform, user=new_owner, role="member")
    assert not services.can_edit(new_owner, tool)
    assert not GroupObjectPermission.objects.exists()


def test_an_explicit_grant_to_another_team_is_guardians_and_can_be_taken_back(
    make_user: Callable[..., Any], make_team: Callable[..., Any]
) -> None:
    owner, helper = make_user("olive"), make_user("hal")
    tool = _tool(owner, make_team("payments", maintainers=[owner]))
    helpers = make_team("helpers", maintainers=[helper])

    assign_perm("catalog.change_tool", helpers.maintainers_group, tool)
    assert services.can_edit(helper, tool) and helper.has_perm("catalog.change_tool", tool)
    remove_perm("catalog.change_tool", helpers.maintainers_group, tool)
    helper = type(helper).objects.get(pk=helper.pk)  # Django caches permissions per user object
    assert not services.can_edit(helper, tool) and not helper.has_perm("catalog.change_tool", tool)


def test_an_inactive_maintainer_may_not_edit(make_user: Callable[..., Any], make_team: Callable[..., Any]) -> None:
    owner, gone = make_user("olive"), make_user("ivan", is_active=False)
    tool = _tool(owner, make_team("payments", maintainers=[owner, gone]))

    assert not services.can_edit(gone, tool)
    assert not gone.has_perm("catalog.change_tool", tool)


def test_migration_0005_removes_the_unread_delete_permissions_and_keeps_change(
    make_user: Callable[..., Any], make_team: Callable[..., Any]
) -> None:
    owner = make_user("olive")
    team = make_team("payments", maintainers=[owner])
    tool = _tool(owner, team)
    for codename in ("catalog.delete_tool", "catalog.change_tool"):  # what earlier releases granted
        assign_perm(codename, team.maintainers_group, tool)

    importlib.import_module("catalog.migrations.0005_drop_delete_object_permissions").forward(apps, None)

    codenames = GroupObjectPermission.objects.filter(object_pk=str(tool.pk)).values_list(
        "permission__codename", flat=True
    )
    assert list(codenames) == ["change_tool"]


def test_migration_0007_removes_only_the_rows_that_restate_ownership_and_gives_them_back(
    make_user: Callable[..., Any], make_team: Callable[..., Any]
) -> None:
    owner, helper = make_user("olive"), make_user("hal")
    team = make_team("payments", maintainers=[owner])
    helpers = make_team("helpers", maintainers=[helper])
    tool = _tool(owner, team)
    agent = services.agent_create(actor=owner, data={"name": "helper", "owner": team.name})
    for entity in (tool, agent):
        assign_perm(f"catalog.change_{entity._meta.model_name}", team.maintainers_group, entity)  # before 0007
    assign_perm("catalog.change_tool", helpers.maintainers_group, tool)  # given explicitly: stays
    migration = importlib.import_module("catalog.migrations.0007_owner_rights_by_membership")

    def rows() -> list[tuple[str, str, int]]:
        return sorted(GroupObjectPermission.objects.values_list("permission__codename", "object_pk", "group_id"))

    migration.forward(apps, None)
    assert rows() == [("change_tool", str(tool.pk), helpers.maintainers_group_id)]
    assert services.can_edit(owner, tool) and services.can_edit(owner, agent) and services.can_edit(helper, tool)

    migration.backward(apps, None)
    assert rows() == sorted(
        [
            ("change_agent", str(agent.pk), team.maintainers_group_id),
            ("change_tool", str(tool.pk), team.maintainers_group_id),
            ("change_tool", str(tool.pk), helpers.maintainers_group_id),
        ]
    )


def test_who_may_edit_is_answered_as_guardian_and_the_memberships_do(
    make_user: Callable[..., Any], make_team: Callable[..., Any]
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
            maintains = TeamMembership.objects.filter(team=team, user=user, role=TeamMembership.Role.MAINTAINER)
            explicit = f"change_{entity._meta.model_name}" in get_perms(user, entity)
            may_edit = user_is_platform_admin(user) or (user.is_active and (maintains.exists() or explicit))
            may_file = user_is_platform_admin(user) or maintains.exists()
            assert services.can_edit(user, entity) is may_edit, (user.username, entity)
            loaded = page_detail(name=entity.name, user=user)
            assert services.can_edit(user, loaded) is may_edit, (user.username, entity)
            assert services.can_create_for(user, loaded.owner) is may_file, (user.username, entity)
    assert not services.can_edit(stranger, selectors.tool_page_detail(name=tool.name, user=owner)), "not owner's"
    assert services.can_edit(direct, selectors.tool_page_detail(name=tool.name, user=owner)), "guardian's"
