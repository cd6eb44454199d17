from django.urls import include, path
from rest_framework.routers import DefaultRouter

from scaffolder.api import views

router = DefaultRouter()
router.include_root_view = False
router.register("templates", views.TemplateViewSet, basename="template")
router.register("runs", views.RunViewSet, basename="run")

urlpatterns = [path("", include(router.urls))]
