"""One MCP server is one tool: its server.json and its catalog-info.yaml, in one import or one after the other
from the same source, in either order, give one tool with the name the catalog-info.yaml chose."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.formats.naming import registry_name_to_catalog_name
from catalog.importing import import_inputs
from catalog.models import Location, Tool
from catalog.teams import team_create
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db
SERVER_JSON = (Path(__file__).parent / "samples" / "mcp" / "server.json").read_bytes()
REGISTRY_NAME = "io.github.acme-data/warehouse-query"
BY_REGISTRY_NAME = b"""apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: warehouse-query
  annotations:
    agentportal.io/registry-name: io.github.acme-data/warehouse-query
    agentportal.io/data-class: internal
spec: {type: mcp-server, lifecycle: production, owner: data}
"""
BY_URL = b"""apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: warehouse-query}
spec:
  type: mcp-server
  lifecycle: production
  owner: data
  remotes: [{type: streamable-http, url: "https://mcp.acme-data.example/warehouse/mcp"}]
"""


@pytest.fixture
def location(db: None) -> Location:
    team_create(name="data")
    return Location.objects.create(kind=Location.Kind.URL, target="https://git.example/acme/warehouse-query")


def _only_tool() -> Tool:
    tool = Tool.objects.get()
    assert tool.name == "warehouse-query"
    assert tool.registry_name == REGISTRY_NAME
    assert tool.endpoint_url == "https://mcp.acme-data.example/warehouse/mcp"
    return tool


@pytest.mark.parametrize("catalog_info", [BY_REGISTRY_NAME, BY_URL], ids=["registry-name", "remote-url"])
def test_both_descriptors_in_one_import_give_one_tool(location: Location, catalog_info: bytes) -> None:
    report = import_inputs(
        [("server.json", SERVER_JSON), ("catalog-info.yaml", catalog_info)], location=location, default_owner="data"
    )

    assert (report.created, report.merged, report.failed) == (1, 1, 0), [str(e) for e in report.errors]
    tool = _only_tool()
    assert tool.secret_names  # what only the server.json gives is kept


def test_the_server_json_after_the_catalog_info_updates_the_same_tool(location: Location) -> None:
    import_inputs([("catalog-info.yaml", BY_REGISTRY_NAME)], location=location)

    report = import_inputs([("server.json", SERVER_JSON)], location=location, default_owner="data")

    assert (report.created, report.updated, report.failed) == (0, 1, 0), [str(e) for e in report.errors]
    assert report.outcomes[0]["name"] == "warehouse-query"
    _only_tool()


def test_the_catalog_info_after_the_server_json_gives_the_tool_its_chosen_name(location: Location) -> None:
    import_inputs([("server.json", SERVER_JSON)], location=location, default_owner="data")
    assert Tool.objects.get().name == registry_name_to_catalog_name(REGISTRY_NAME)

    report = import_inputs([("catalog-info.yaml", BY_URL)], location=location)

    assert (report.created, report.updated, report.failed) == (0, 1, 0), [str(e) for e in report.errors]
    tool = _only_tool()
    renamed = AuditEvent.objects.get(action="catalog.tool.renamed", object_id=str(tool.pk))
    assert renamed.changes["name"] == {
        "before": registry_name_to_catalog_name(REGISTRY_NAME),
        "after": "warehouse-query",
    }
    # Importing both again changes nothing.
    again = import_inputs(
        [("server.json", SERVER_JSON), ("catalog-info.yaml", BY_URL)], location=location, default_owner="data"
    )
    assert (again.created, again.failed) == (0, 0)
    _only_tool()


def test_two_descriptors_that_each_chose_a_name_stay_two_tools(location: Location) -> None:
    report = import_inputs(
        [("a.yaml", BY_URL), ("b.yaml", BY_URL.replace(b"name: warehouse-query", b"name: warehouse-query-eu"))],
        location=location,
    )
    assert report.created == 2
