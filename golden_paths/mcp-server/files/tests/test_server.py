from __future__ import annotations

from typing import Any

from mcp import Client

from {{ package }}.store import (
    DATA_CLASS,
)

READ_ONLY = {
    "readOnlyHint": True,
    "destructiveHint": False,
    "idempotentHint": True,
    "openWorldHint": False,
}


async def tools_by_name(client: Client) -> dict[str, Any]:
    listed = await client.list_tools()
    return {tool.name: tool for tool in listed.tools}


def annotations_of(tool: Any) -> dict[str, Any]:
    return tool.annotations.model_dump(by_alias=True, exclude_none=True)


def test_it_serves_read_only_tools_with_honest_annotations(with_client: Any) -> None:
    tools = with_client(tools_by_name)
    assert {"get_item", "list_items"} <= set(tools)
    for name in ("get_item", "list_items"):
        assert annotations_of(tools[name]) == READ_ONLY
        assert tools[name].title
        assert tools[name].description


def test_it_publishes_typed_input_and_output_schemas(with_client: Any) -> None:
    tools = with_client(tools_by_name)
    get_item = tools["get_item"]
    assert get_item.input_schema["required"] == ["item_id"]
    assert get_item.input_schema["properties"]["item_id"]["pattern"] == r"^item-[0-9]{1,9}$"
    assert set(get_item.output_schema["properties"]) >= {"id", "title", "status", "data_class"}
    limit = tools["list_items"].input_schema["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"]) == (1, 100)


def test_it_gets_an_item(with_client: Any) -> None:
    async def call(client: Client) -> Any:
        return await client.call_tool("get_item", {"item_id": "item-1"})

    result = with_client(call)
    assert not result.is_error
    assert result.structured_content["id"] == "item-1"
    assert result.structured_content["data_class"] == DATA_CLASS


def test_it_lists_items_by_status(with_client: Any) -> None:
    async def call(client: Client) -> Any:
        return await client.call_tool("list_items", {"status": "open", "limit": 10})

    result = with_client(call)
    assert not result.is_error
    statuses = {item["status"] for item in result.structured_content["items"]}
    assert statuses == {"open"}
    assert result.structured_content["total"] == 1


def test_it_reports_an_unknown_item_as_a_tool_error(with_client: Any) -> None:
    async def call(client: Client) -> Any:
        return await client.call_tool("get_item", {"item_id": "item-404"})

    result = with_client(call)
    assert result.is_error
    assert "No item with id item-404" in result.content[0].text


def test_it_rejects_arguments_that_break_the_schema(with_client: Any) -> None:
    async def call(client: Client) -> Any:
        return await client.call_tool("get_item", {"item_id": "../../etc/passwd"})

    assert with_client(call).is_error
