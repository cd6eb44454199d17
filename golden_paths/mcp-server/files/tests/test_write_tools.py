from __future__ import annotations

from typing import Any

from mcp import Client


async def annotations(client: Client) -> dict[str, dict[str, Any]]:
    listed = await client.list_tools()
    return {
        tool.name: tool.annotations.model_dump(by_alias=True, exclude_none=True)
        for tool in listed.tools
    }


def test_it_marks_create_as_additive_and_delete_as_destructive(with_client: Any) -> None:
    found = with_client(annotations)
    assert found["create_item"]["readOnlyHint"] is False
    assert found["create_item"]["destructiveHint"] is False
    assert found["create_item"]["idempotentHint"] is False
    assert found["delete_item"]["readOnlyHint"] is False
    assert found["delete_item"]["destructiveHint"] is True
    assert found["delete_item"]["idempotentHint"] is True


def test_it_creates_and_deletes_an_item(with_client: Any) -> None:
    async def scenario(client: Client) -> list[Any]:
        created = await client.call_tool("create_item", {"title": "Ship it"})
        item_id = created.structured_content["id"]
        fetched = await client.call_tool("get_item", {"item_id": item_id})
        deleted = await client.call_tool("delete_item", {"item_id": item_id})
        deleted_again = await client.call_tool("delete_item", {"item_id": item_id})
        missing = await client.call_tool("get_item", {"item_id": item_id})
        return [fetched, deleted, deleted_again, missing]

    fetched, deleted, deleted_again, missing = with_client(scenario)
    assert fetched.structured_content["title"] == "Ship it"
    assert deleted.structured_content["deleted"] is True
    assert deleted_again.structured_content["deleted"] is False
    assert missing.is_error


def test_it_refuses_an_empty_title(with_client: Any) -> None:
    async def call(client: Client) -> Any:
        return await client.call_tool("create_item", {"title": ""})

    assert with_client(call).is_error
