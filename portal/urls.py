from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal import sso, views

portal_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tokens/", views.tokens_page, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke_view, name="token-revoke"),
    path("audit/", views.audit_page, name="audit"),
]

api_patterns = [
    path("", include(("portal.api.urls", "portal"), namespace="portal-api")),
    path("", include(("catalog.api.urls", "catalog"), namespace="catalog-api")),
    path("approvals/", include(("approvals.api.urls", "approvals"), namespace="approvals-api")),
    path("scaffolder/", include(("scaffolder.api.urls", "scaffolder"), namespace="scaffolder-api")),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"), namespace="portal")),
    path("catalog/", include("catalog.urls", namespace="catalog")),
    path("reviews/", include("approvals.urls", namespace="approvals")),
    path("create/", include("scaffolder.urls", namespace="scaffolder")),
    path("api/v1/", include(api_patterns)),
    path("v0.1/", include("approvals.registry_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view delivers its start-up script as a file, so the docs page runs under our script-src 'self'.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Single sign-on (OpenID Connect); the names are the ones mozilla-django-oidc reverses.
    path("oidc/authenticate/", sso.SsoStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", sso.SsoCallbackView.as_view(), name="oidc_authentication_callback"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]

handler403 = "portal.views.permission_denied"
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"
