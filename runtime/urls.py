from django.urls import path

from runtime import views

app_name = "runtime"

urlpatterns = [
    path("findings/", views.findings_page, name="findings"),
    path("findings/<int:pk>/", views.finding_page, name="finding"),
    path("findings/<int:pk>/action/", views.finding_action, name="finding-action"),
    path("scorecards/", views.scorecards_page, name="scorecards"),
    path("kpis/", views.kpis_page, name="kpis"),
]
