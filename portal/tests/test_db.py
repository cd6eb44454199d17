"""portal.db's readers build the instances the ORM would, from hand-written SQL, on both databases."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import services as catalog
from catalog.models import Capability, Tool
from portal.db import model_columns, model_from_row, models_from_row, select_instances

pytestmark = pytest.mark.django_db


def _values(instance: Any) -> dict[str, Any]:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


@pytest.fixture
def tool(make_team: Any) -> Tool:
    make_team("payments")
    return catalog.tool_create(
        actor=None,
        data={
            "name": "ledger",
            "owner": "payments",
            "kind": "http_api",
            "endpoint_url": "https://ledger.example/api",
            "version": "2.1.0",
            "tags": ["money", "pii"],
            "data_class": "restricted",
            "capabilities": [
                {"name": "read_entries", "read_only": True},
                {"name": "post_entry", "destructive": True, "description": "writes"},
            ],
        },
    )


def test_select_instances_reads_what_the_orm_reads(tool: Tool, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        [read] = select_instances(Tool, "t.id = %s", [tool.pk])
    expected = Tool.objects.get(pk=tool.pk)
    assert _values(read) == _values(expected)
    assert read.tags == ["money", "pii"] and isinstance(read.risk, dict)  # JSON decoded, not text
    assert read.created_at == expected.created_at and read.created_at.tzinfo is not None
    assert not read._state.adding and read._state.db == "default"


def test_excluded_fields_are_deferred_and_load_on_access(tool: Tool, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        capabilities = select_instances(
            Capability, "t.tool_id = %s", [tool.pk], order_by="t.name DESC", exclude=["description"]
        )
    assert [c.name for c in capabilities] == ["read_entries", "post_entry"]
    assert [c.read_only for c in capabilities] == [True, None]  # unknown stays unknown
    assert "description" in capabilities[1].get_deferred_fields()
    with django_assert_num_queries(1):
        assert capabilities[1].description == "writes"


def test_model_from_row_takes_the_columns_in_model_columns_order(tool: Tool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {model_columns(Tool, 'x')} FROM catalog_tool x WHERE x.id = %s", [tool.pk])  # noqa: S608
        row = cursor.fetchone()
    assert _values(model_from_row(Tool, row)) == _values(Tool.objects.get(pk=tool.pk))


def test_excluding_a_column_the_model_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="Tool has no column nope"):
        model_columns(Tool, "t", exclude=["nope"])


def test_models_from_row_splits_a_joined_row_and_hands_back_what_follows(tool: Tool) -> None:
    from django.db import connection

    from catalog.models import Team

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {model_columns(Tool, 't', exclude=['definition'])}, {model_columns(Team, 'o')}, 7 "  # noqa: S608
            "FROM catalog_tool t JOIN catalog_team o ON o.id = t.owner_id WHERE t.id = %s",
            [tool.pk],
        )
        row = cursor.fetchone()
    (read, owner), rest = models_from_row(row, (Tool, ["definition"]), Team)
    assert read.get_deferred_fields() == {"definition"}
    expected = Tool.objects.get(pk=tool.pk)
    assert all(getattr(read, k) == getattr(expected, k) for k in _values(expected) if k != "definition")
    assert owner.name == "payments" and rest == (7,)
