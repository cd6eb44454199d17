"""The MCP registry API at `/v0.1/` (see `approvals.registry`)."""

from django.urls import path

from approvals import registry

app_name = "mcp-registry"

urlpatterns = [
    path("servers", registry.ServerListView.as_view(), name="servers"),
    # The server name contains '/' (URL-encoded by clients, decoded before routing): match up to the last
    # "/versions/".
    path("servers/<path:server_name>/versions", registry.ServerVersionsView.as_view(), name="server-versions"),
    path(
        "servers/<path:server_name>/versions/<str:version>",
        registry.ServerVersionView.as_view(),
        name="server-version",
    ),
]
