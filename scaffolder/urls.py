from django.urls import path

from scaffolder import views

app_name = "scaffolder"

urlpatterns = [
    path("", views.index, name="index"),
    path("runs/<int:pk>/", views.run_page, name="run"),
    path("runs/<int:pk>/retry/", views.run_retry, name="run-retry"),
    path("runs/<int:pk>/download/", views.run_download, name="run-download"),
    path("runs/<int:pk>/update/", views.run_update, name="run-update"),
    path("<slug:name>/", views.template_page, name="template"),
    path("<slug:name>/validate/", views.validate_field, name="validate"),
]
