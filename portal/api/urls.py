from django.urls import include, path
from rest_framework.routers import DefaultRouter

from portal.api.views import ApiTokenViewSet, MeView

router = DefaultRouter()
router.register("tokens", ApiTokenViewSet, basename="token")

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    path("", include(router.urls)),
]
