from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("mine/", views.mine, name="mine"),
    path("preferences/", views.preferences_page, name="preferences"),
    path("submit/", views.submit, name="submit"),
    path("grants/", views.request_grant, name="grant"),
    path("requests/<int:pk>/", views.request_page, name="request"),
    path("requests/<int:pk>/decide/", views.decide, name="decide"),
    path("requests/<int:pk>/withdraw/", views.withdraw, name="withdraw"),
    path("requests/<int:pk>/hints-attestation/", views.attest_hints, name="attest-hints"),
    path("requests/<int:pk>/resubmit/", views.resubmit, name="resubmit"),
]
