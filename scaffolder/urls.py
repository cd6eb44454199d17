from django.urls import path

from scaffolder import views

app_name = "scaffolder"

urlpatterns = [
    path("", views.index, name="index"),
]
