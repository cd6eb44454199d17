from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from agents_api.mcp_server import mcp_endpoint
from portal import sso, views
from portal.api.views import api_not_found
from runtime import receiver as runtime_receiver

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
    # Before the catalog's: grants/check/ and grants/policy are not grant ids.
    path("", include(("agents_api.api.urls", "agents_api"), namespace="agents-api")),
    path("", include(("catalog.api.urls", "catalog"), namespace="catalog-api")),
    path("approvals/", include(("approvals.api.urls", "approvals"), namespace="approvals-api")),
    path("scaffolder/", include(("scaffolder.api.urls", "scaffolder"), namespace="scaffolder-api")),
    path("", include(("runtime.api.urls", "runtime"), namespace="runtime-api")),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"), namespace="portal")),
    path("catalog/", include("catalog.urls", namespace="catalog")),
    path("reviews/", include("approvals.urls", namespace="approvals")),
    path("create/", include("scaffolder.urls", namespace="scaffolder")),
    path("runtime/", include("runtime.urls", namespace="runtime")),
    path("v1/traces", runtime_receiver.traces, name="otlp-traces"),
    path("api/v1/", include(api_patterns)),
    path("v0.1/", include("approvals.registry_urls")),
    path("mcp/", mcp_endpoint, name="mcp"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view delivers its start-up script as a file, so the docs page runs under our script-src 'self'.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Last of the API: an unknown path or an id of the wrong shape answers the JSON error, not the HTML page.
    re_path(r"^api/(?P<unmatched>.*)$", api_not_found, name="api-not-found"),
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
