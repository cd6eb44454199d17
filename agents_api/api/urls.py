from django.urls import path

from agents_api.api import views

urlpatterns = [
    path("grants/check/", views.GrantCheckView.as_view(), name="grant-check"),
    path("grants/policy", views.GrantPolicyView.as_view(), name="grant-policy"),
]
