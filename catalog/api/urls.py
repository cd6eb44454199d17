from django.urls import include, path
from rest_framework.routers import DefaultRouter

from catalog.api import views

router = DefaultRouter()
router.include_root_view = False
router.register("agents", views.AgentViewSet, basename="agent")
router.register("tools", views.ToolViewSet, basename="tool")
router.register("models", views.AIModelViewSet, basename="model")
router.register("teams", views.TeamViewSet, basename="team")
router.register("grants", views.GrantViewSet, basename="grant")
router.register("locations", views.LocationViewSet, basename="location")

urlpatterns = [
    path("search/", views.CatalogSearchView.as_view(), name="search"),
    path("import/", views.ImportView.as_view(), name="import"),
    path("imports/<int:pk>/", views.ImportRunView.as_view(), name="import-run"),
    path("export/backstage", views.BackstageExportView.as_view(), name="export-backstage"),
    path("", include(router.urls)),
]
