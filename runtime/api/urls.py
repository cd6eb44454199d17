from django.urls import path

from runtime.api import views

urlpatterns = [
    path("findings/", views.FindingListView.as_view(), name="finding-list"),
    path("findings/<int:pk>/", views.FindingDetailView.as_view(), name="finding-detail"),
    path("agents/<str:name>/usage/", views.AgentUsageView.as_view(), name="agent-usage"),
    path("agents/<str:name>/evaluations/", views.EvaluationView.as_view(), name="agent-evaluations"),
    path("agents/<str:name>/autonomy-evidence/", views.AutonomyEvidenceView.as_view(), name="agent-autonomy-evidence"),
]
