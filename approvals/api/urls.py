from django.urls import include, path
from rest_framework.routers import DefaultRouter

from approvals.api import views

router = DefaultRouter()
router.include_root_view = False
router.register("requests", views.ApprovalRequestViewSet, basename="request")
router.register("policies", views.PolicyViewSet, basename="policy")

urlpatterns = [
    path("", include(router.urls)),
]
