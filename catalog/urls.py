from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.catalog_index, name="index"),
    path("import/", views.import_page, name="import"),
    path("import/runs/<int:pk>/", views.import_run_page, name="import-run"),
    path("agents/new/", views.agent_create, name="agent-create"),
    path("agents/<str:name>/", views.agent_page, name="agent"),
    path("agents/<str:name>/edit/", views.agent_edit, name="agent-edit"),
    path("tools/new/", views.tool_create, name="tool-create"),
    path("tools/<str:name>/", views.tool_page, name="tool"),
    path("tools/<str:name>/edit/", views.tool_edit, name="tool-edit"),
    path("teams/<str:name>/", views.team_page, name="team"),
]
