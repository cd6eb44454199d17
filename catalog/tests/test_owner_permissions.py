"""Owners' maintainers hold one object permission per entity (change), which editing and deleting both check."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from guardian.models import GroupObjectPermission
from guardian.shortcuts import assign_perm

from catalog import services

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
