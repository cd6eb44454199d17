"""One env-driven settings module for every mode.

PORTAL_MODE picks the defaults: ``production`` (the default: safest), ``development`` (``make run``) or ``test``
(chosen automatically under pytest). In production every required setting must be given explicitly; a missing or
invalid one stops start-up with its name and what it expects.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))

MODES = ("production", "development", "test")


def _default_mode() -> str:
    return "test" if "PYTEST_VERSION" in os.environ else "production"


def read_dotenv(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a developer's ``.env`` (written by ``make install``); ``#`` comments, blank lines and
    one pair of surrounding quotes allowed. Nothing is expanded: the file is data, not shell."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.isidentifier():
            raise ImproperlyConfigured(f"{path}:{number} is not a NAME=value line.")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def _dotenv_applies() -> bool:
    """A checkout's ``.env`` serves the developer only: the test suite and CI never read it (a stray file must not
    turn a test run into something else), and the environment always wins over it."""
    if os.environ.get("CI") or os.environ.get("PORTAL_MODE", "").strip() == "test":
        return False
    return os.environ.get("PORTAL_MODE", "").strip() != "" or "PYTEST_VERSION" not in os.environ


DOTENV_PATH = Path(os.environ.get("PORTAL_DOTENV", BASE_DIR / ".env"))
if os.environ.get("PORTAL_DOTENV") != "" and _dotenv_applies() and DOTENV_PATH.is_file():
    for _name, _value in read_dotenv(DOTENV_PATH).items():
        os.environ.setdefault(_name, _value)

PORTAL_MODE = os.environ.get("PORTAL_MODE", "").strip() or _default_mode()
if PORTAL_MODE not in MODES:
    raise ImproperlyConfigured(f"PORTAL_MODE must be one of {', '.join(MODES)}; got {PORTAL_MODE!r}.")
IS_PRODUCTION = PORTAL_MODE == "production"
IS_TEST = PORTAL_MODE == "test"


def env_str(name: str, default: str | None = None, *, required_in_production: bool = False) -> str:
    """Read a setting; ``NAME_FILE`` (a path) wins over ``NAME`` so secrets can come from mounted files."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points at {file_path!r}, which cannot be read: {exc}") from exc
    value = os.environ.get(name)
    if value is None or value == "":
        if required_in_production and IS_PRODUCTION:
            raise ImproperlyConfigured(
                f"{name} is required in production mode (PORTAL_MODE=production): set {name} or {name}_FILE"
                " (a developer checkout: `make install` writes a .env with PORTAL_MODE=development)."
            )
        return default if default is not None else ""
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0, yes/no); got {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}.") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Core -------------------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", PORTAL_MODE == "development")
if IS_PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production mode; unset DEBUG or use PORTAL_MODE=development.")

_INSECURE_DEV_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdefghij"
SECRET_KEY = env_str("SECRET_KEY", _INSECURE_DEV_KEY, required_in_production=True)
if IS_PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY == _INSECURE_DEV_KEY):
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters in production mode.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if IS_PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
if IS_PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required in production mode: a comma-separated list of host names.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS entries must start with http:// or https://; got {_origin!r}."
        )

SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "csp",
    "template_partials",
    "django_htmx",
    "django_prometheus",
    "portal",
    "catalog",
    "approvals",
    "scaffolder",
    "agents_api",
    "runtime",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "portal.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
            ],
        },
    }
]

# --- Database ---------------------------------------------------------------------------------------------
_sqlite_path = VAR_DIR / "portal.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{_sqlite_path}", required_in_production=True)
try:
    _db: dict[str, Any] = dict(dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True))
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL ({exc}).") from exc
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0
    # WAL and IMMEDIATE transactions let the web process and the Celery worker share the file without
    # "database is locked" errors on the first write of a transaction.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    # A file, not memory, so a real worker process started by a test sees the same database.
    # Per process, so two test runs on one machine never share (and clobber) a test database.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-portal-{os.getpid()}.sqlite3")}
elif _db["ENGINE"].startswith("django.db.backends.postgresql"):
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1))
    # Parameters travel apart from the SQL, and a statement a connection has run 5 times is prepared on the
    # server: planning is most of PostgreSQL's work for the short statements of a request or a workflow (a
    # primary-key lookup costs about a third as much prepared). Behind PgBouncer in transaction mode prepared
    # statements need its max_prepared_statements; DATABASE_PREPARED_STATEMENTS=false turns them off.
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        _db["OPTIONS"].setdefault("server_side_binding", True)
        _db["OPTIONS"].setdefault("prepare_threshold", 5)
DATABASES = {"default": _db}
IS_POSTGRES = _db["ENGINE"].startswith("django.db.backends.postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (axes throttling, rate limits) -----------------------------------------------------------------
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
_redis_cache = env_str("CACHE_URL", "")
if _redis_cache:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_cache}}

# How long a page of API search results is shared between readers of the same catalog (catalog.search_cache).
CATALOG_SEARCH_RESULTS_SECONDS = env_int("CATALOG_SEARCH_RESULTS_SECONDS", 10, minimum=0)

# --- Auth -------------------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Owners' maintainers may change their agents and tools by membership; guardian answers for explicit grants.
    "catalog.permissions.OwningTeamBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous visitors get no object permissions at all.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "portal:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if IS_TEST:
    # Hashing cost is not what the tests measure.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
# Per address (password spraying: many usernames from one address) and per username and address (guessing one
# password; the user still signs in from elsewhere). Each has its own limit: see portal.authentication.
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20, minimum=1)
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["username", "ip_address"]]
AXES_HANDLER = "portal.authentication.LoginFailureHandler"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1)

# --- Security headers ---------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12, minimum=60)
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"
_secure_default = IS_PRODUCTION
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _secure_default)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _secure_default)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _secure_default)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if IS_PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", IS_PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading is a commitment for the whole domain; it stays an explicit opt-in (SECURE_HSTS_PRELOAD=true).
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health probes come over plain HTTP from the orchestrator.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# --- I18N, static -----------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# Imports with more input than this run in Celery, not in the web request (catalog.import_runs).
IMPORT_INLINE_MAX_BYTES = env_int("IMPORT_INLINE_MAX_BYTES", 512 * 1024, minimum=0)

# --- E-mail -----------------------------------------------------------------------------------------------
EMAIL_URL_DEFAULT = "log" if PORTAL_MODE == "development" else "smtp"
_EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "memory": "django.core.mail.backends.locmem.EmailBackend",
    # One INFO line per message (recipients, subject); the message itself in EMAIL_FILE_PATH.
    "log": "portal.mail.LogEmailBackend",
}
_email_backend_name = env_str("EMAIL_BACKEND", "memory" if IS_TEST else EMAIL_URL_DEFAULT)
if _email_backend_name not in _EMAIL_BACKENDS:
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND must be one of {', '.join(_EMAIL_BACKENDS)}; got {_email_backend_name!r}."
    )
EMAIL_BACKEND = _EMAIL_BACKENDS[_email_backend_name]
EMAIL_FILE_PATH = Path(env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail")))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "agent-portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Outbound HTTP (SSRF-safe client in portal/net.py) ----------------------------------------------------
SSRF_ALLOWLIST = env_list("SSRF_ALLOWLIST", [])
OUTBOUND_HTTP_TIMEOUT = env_int("OUTBOUND_HTTP_TIMEOUT", 10, minimum=1)
# /v0.1/servers (approved MCP servers for coding assistants): public by default, or token-only.
MCP_REGISTRY_PUBLIC = env_bool("MCP_REGISTRY_PUBLIC", True)
MCP_REGISTRY_NAMESPACE = env_str("MCP_REGISTRY_NAMESPACE", "")
APPROVALS_REVIEW_WEBHOOK_URL = env_str("APPROVALS_REVIEW_WEBHOOK_URL", "")
LOCATION_SYNC_MINUTES = env_int("LOCATION_SYNC_MINUTES", 60, minimum=1)
# Local git paths as locations are for tests and laptops; production reads https:// repositories only.
LOCATION_ALLOW_LOCAL_GIT = env_bool("LOCATION_ALLOW_LOCAL_GIT", PORTAL_MODE != "production")
OUTBOUND_HTTP_MAX_BYTES = env_int("OUTBOUND_HTTP_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)

# --- Audit trail -----------------------------------------------------------------------------------------
# Checkpoints of the hash chain are signed with this key, which must not live in the database (`_FILE` works).
# Outside production a key derived from SECRET_KEY is used, so development needs no setup.
AUDIT_SIGNING_KEY = env_str("AUDIT_SIGNING_KEY", "", required_in_production=True)
if IS_PRODUCTION and len(AUDIT_SIGNING_KEY) < 32:
    raise ImproperlyConfigured(
        "AUDIT_SIGNING_KEY must be a random string of at least 32 characters in production mode."
    )
# After a key change, the former keys (comma-separated) still verify the checkpoints they signed.
AUDIT_SIGNING_KEYS_RETIRED = env_list("AUDIT_SIGNING_KEYS_RETIRED", [])
# Each checkpoint is also appended here (JSON lines), outside the database: put it on storage the database's
# operators cannot rewrite, and keep it.
AUDIT_CHECKPOINT_PATH = Path(env_str("AUDIT_CHECKPOINT_PATH", str(VAR_DIR / "audit-checkpoints.jsonl")))
# The sealer waits this long for a transaction that took an event id and has not committed yet before sealing the
# events after it (the late event is then chained after them when it commits). Tests roll back, and so leave gaps
# before every test's first event: there the sealer does not wait (the tests of the wait set it themselves).
AUDIT_SEAL_GRACE_SECONDS = env_int("AUDIT_SEAL_GRACE_SECONDS", 0 if IS_TEST else 10, minimum=0)
AUDIT_SEAL_EVERY_SECONDS = env_int("AUDIT_SEAL_EVERY_SECONDS", 5, minimum=1)
# --- Single sign-on (OpenID Connect, portal/sso.py) -------------------------------------------------------
# On when OIDC_ISSUER is set. Endpoints and keys come from the issuer's discovery document at the first sign-in.
# People are matched by (issuer, subject); OIDC_GROUP_MAP turns the provider's groups into portal roles and team
# memberships again at every sign-in, so a group removed at the provider takes its rights away at the next one.
OIDC_ROLE_NAMES = ("engineer", "security-reviewer", "security-lead", "data-owner", "business-owner", "platform-admin")


def parse_group_map(raw: str) -> dict[str, list[str]]:
    """``{"<provider group>": ["role:<role>", "team:<team>", "team:<team>:maintainer", ...]}``."""
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"OIDC_GROUP_MAP must be a JSON object: {exc}.") from exc
    if not isinstance(parsed, dict):
        raise ImproperlyConfigured("OIDC_GROUP_MAP must be a JSON object of provider group -> list of grants.")
    grant = re.compile(r"^(role:(?P<role>[a-z-]+)|team:(?P<team>[a-z0-9-]{1,63})(:(?P<team_role>member|maintainer))?)$")
    group_map: dict[str, list[str]] = {}
    for group, grants in parsed.items():
        if isinstance(grants, str):
            grants = [grants]
        if not isinstance(grants, list) or not grants:
            raise ImproperlyConfigured(f"OIDC_GROUP_MAP[{group!r}] must be a non-empty list of grants.")
        for item in grants:
            found = grant.match(item) if isinstance(item, str) else None
            if found is None or (found["role"] and found["role"] not in OIDC_ROLE_NAMES):
                raise ImproperlyConfigured(
                    f"OIDC_GROUP_MAP[{group!r}] has {item!r}: expected role:<{'|'.join(OIDC_ROLE_NAMES)}>, "
                    "team:<team> or team:<team>:maintainer."
                )
        group_map[str(group)] = list(grants)
    return group_map


OIDC_ISSUER = env_str("OIDC_ISSUER", "").rstrip("/")
OIDC_ENABLED = bool(OIDC_ISSUER)
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID", "")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET", "")
OIDC_SCOPES = env_str("OIDC_SCOPES", "openid email profile groups")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_GROUP_MAP = parse_group_map(env_str("OIDC_GROUP_MAP", "{}"))
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256")
LOCAL_LOGIN_ENABLED = env_bool("LOCAL_LOGIN_ENABLED", True)
if OIDC_ENABLED:
    if not OIDC_ISSUER.startswith(("https://", "http://")):
        raise ImproperlyConfigured(f"OIDC_ISSUER must be an https:// URL; got {OIDC_ISSUER!r}.")
    if IS_PRODUCTION and not OIDC_ISSUER.startswith("https://"):
        raise ImproperlyConfigured("OIDC_ISSUER must be an https:// URL in production mode.")
    for _name, _value in (("OIDC_CLIENT_ID", OIDC_CLIENT_ID), ("OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET)):
        if not _value:
            raise ImproperlyConfigured(f"{_name} is required when OIDC_ISSUER is set (the secret: use {_name}_FILE).")
    if "openid" not in OIDC_SCOPES.split():
        raise ImproperlyConfigured(f"OIDC_SCOPES must include openid; got {OIDC_SCOPES!r}.")
    if OIDC_SIGN_ALGO not in {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"}:
        raise ImproperlyConfigured(f"OIDC_SIGN_ALGO must be an asymmetric JWS algorithm; got {OIDC_SIGN_ALGO!r}.")
    AUTHENTICATION_BACKENDS.insert(
        AUTHENTICATION_BACKENDS.index("django.contrib.auth.backends.ModelBackend"), "portal.sso.PortalOidcBackend"
    )
if not LOCAL_LOGIN_ENABLED:
    if not OIDC_ENABLED:
        raise ImproperlyConfigured("LOCAL_LOGIN_ENABLED=false needs single sign-on: set OIDC_ISSUER too.")
    # No password is checked anywhere (login page, admin): the OIDC backend still loads users and answers perms.
    AUTHENTICATION_BACKENDS.remove("django.contrib.auth.backends.ModelBackend")
# mozilla-django-oidc's own names for what it reads from settings (the endpoints come from discovery).
OIDC_RP_CLIENT_ID = OIDC_CLIENT_ID
OIDC_RP_CLIENT_SECRET = OIDC_CLIENT_SECRET
OIDC_RP_SCOPES = OIDC_SCOPES
OIDC_RP_SIGN_ALGO = OIDC_SIGN_ALGO
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_TIMEOUT = OUTBOUND_HTTP_TIMEOUT
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
OIDC_CREATE_USER = True

# --- Celery -----------------------------------------------------------------------------------------------
_celery_dir = VAR_DIR / "celery"
CELERY_BROKER_URL = env_str(
    # A host name, though the filesystem transport ignores it: without one kombu warns "No hostname was supplied"
    # each time a connection is described (every publish), which flooded the development log.
    "CELERY_BROKER_URL",
    "memory://" if IS_TEST else "filesystem://localhost/",
    required_in_production=True,
)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30 if CELERY_TASK_TIME_LIMIT > 60 else CELERY_TASK_TIME_LIMIT
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (_celery_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
else:
    # Unacknowledged messages are redelivered after this; it must exceed the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 4}
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "portal")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes every database connection before and after each task unless this is set; a new
# PostgreSQL backend per task cost more than the task. Connections follow CONN_MAX_AGE instead (portal/celery.py).
CELERY_DB_REUSE_MAX = 100_000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "worker-heartbeat": {"task": "portal.record_heartbeat", "schedule": 60.0},
    "audit-seal": {"task": "portal.audit_seal", "schedule": float(AUDIT_SEAL_EVERY_SECONDS)},
    "catalog-sync-locations": {"task": "catalog.sync_due_locations", "schedule": 300.0},
    "approvals-sla": {"task": "approvals.sla_scan", "schedule": 300.0},
    "approvals-requeue-checks": {"task": "approvals.requeue_stale_checks", "schedule": 60.0},
    "approvals-expire-grants": {"task": "approvals.expire_grants", "schedule": 900.0},
    "approvals-recertify": {"task": "approvals.open_recertifications", "schedule": 3600.0},
    "approvals-expire-stale": {"task": "approvals.expire_stale_requests", "schedule": 3600.0},
    "runtime-prune-spans": {"task": "runtime.prune_spans", "schedule": 3600.0},
    "runtime-scorecards": {"task": "runtime.compute_scorecards", "schedule": 3600.0},
    "runtime-kpi-snapshot": {"task": "runtime.snapshot_kpis", "schedule": 3600.0},
    "approvals-mcp-drift": {"task": "approvals.mcp_drift_check", "schedule": 3600.0},
}
CELERY_TIMEZONE = TIME_ZONE

# A running check whose worker vanished is run again after this lease (longer than any check may take).
APPROVALS_CHECK_LEASE_SECONDS = env_int("APPROVALS_CHECK_LEASE_SECONDS", CELERY_TASK_TIME_LIMIT + 30, minimum=2)

# --- Runtime governance (telemetry in) -----------------------------------------------------------------------
RUNTIME_SPAN_RETENTION_DAYS = env_int("RUNTIME_SPAN_RETENTION_DAYS", 7, minimum=1)
RUNTIME_OTLP_MAX_BYTES = env_int("RUNTIME_OTLP_MAX_BYTES", 8 * 1024 * 1024, minimum=1024)
RUNTIME_OTLP_MAX_DECOMPRESSED_BYTES = env_int("RUNTIME_OTLP_MAX_DECOMPRESSED_BYTES", 32 * 1024 * 1024, minimum=1024)
RUNTIME_OTLP_MAX_SPANS = env_int("RUNTIME_OTLP_MAX_SPANS", 10_000, minimum=1)
RUNTIME_INGEST_MAX_INFLIGHT = env_int("RUNTIME_INGEST_MAX_INFLIGHT", 4, minimum=1)
RUNTIME_RETRY_AFTER_SECONDS = env_int("RUNTIME_RETRY_AFTER_SECONDS", 2, minimum=1)
RUNTIME_SUSPEND_ON_CRITICAL = env_bool("RUNTIME_SUSPEND_ON_CRITICAL", False)
RUNTIME_AUTONOMY_DAYS = env_int("RUNTIME_AUTONOMY_DAYS", 14, minimum=1)
RUNTIME_AUTONOMY_MAX_ERROR_RATE = float(env_str("RUNTIME_AUTONOMY_MAX_ERROR_RATE", "0.02"))
RUNTIME_RECERTIFY_DAYS = env_int("RUNTIME_RECERTIFY_DAYS", 365, minimum=1)
# USD per million tokens (input, output) by model id; override with a JSON object in RUNTIME_MODEL_PRICES.
RUNTIME_MODEL_PRICES: dict[str, list[float]] = {
    "gpt-4o": [2.5, 10.0],
    "gpt-4o-mini": [0.15, 0.6],
    "claude-sonnet-4": [3.0, 15.0],
    "claude-haiku-4": [0.8, 4.0],
    "llama-3.1-70b": [0.0, 0.0],
}
if env_str("RUNTIME_MODEL_PRICES", ""):
    import json as _json

    RUNTIME_MODEL_PRICES = _json.loads(env_str("RUNTIME_MODEL_PRICES"))

# --- Scaffolder publishers (a publisher is off while its target is empty) ---------------------------------
SCAFFOLDER_GIT_REMOTE_BASE = env_str("SCAFFOLDER_GIT_REMOTE_BASE", "")
SCAFFOLDER_GITHUB_TOKEN = env_str("SCAFFOLDER_GITHUB_TOKEN", "")
SCAFFOLDER_GITHUB_API_URL = env_str("SCAFFOLDER_GITHUB_API_URL", "https://api.github.com")
SCAFFOLDER_GITHUB_ORG = env_str("SCAFFOLDER_GITHUB_ORG", "")
SCAFFOLDER_GITLAB_TOKEN = env_str("SCAFFOLDER_GITLAB_TOKEN", "")
SCAFFOLDER_GITLAB_API_URL = env_str("SCAFFOLDER_GITLAB_API_URL", "https://gitlab.com/api/v4")
SCAFFOLDER_GITLAB_NAMESPACE_ID = env_str("SCAFFOLDER_GITLAB_NAMESPACE_ID", "")
SCAFFOLDER_ALLOW_LOCAL_GIT = env_bool("SCAFFOLDER_ALLOW_LOCAL_GIT", PORTAL_MODE != "production")
SCAFFOLDER_WORK_DIR = Path(env_str("SCAFFOLDER_WORK_DIR", str(VAR_DIR / "scaffolder")))
SCAFFOLDER_GOLDEN_PATHS_DIR = Path(env_str("SCAFFOLDER_GOLDEN_PATHS_DIR", str(BASE_DIR / "golden_paths")))

# --- REST API ---------------------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "portal.authentication.TokenScopePermission",
        "portal.api.query.KnownQueryParameters",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.PortalAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.PortalPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.api.throttling.PortalUserRateThrottle",
        "portal.api.throttling.PortalAnonRateThrottle",
    ],
    # Counted in the default cache (Redis when CACHE_URL is set, so every process shares the count). Tests run
    # thousands of requests from one user: their rates only stop a runaway loop; test_throttling lowers them.
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_USER_RATE", "1000000/hour" if IS_TEST else "6000/hour"),
        "anon": env_str("API_ANON_RATE", "1000000/hour" if IS_TEST else "600/hour"),
    },
}
for _scope, _rate in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].items():
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", _rate):
        raise ImproperlyConfigured(
            f"API_{_scope.upper()}_RATE must look like 6000/hour (per second, minute, hour or day); got {_rate!r}."
        )
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")
SPECTACULAR_SETTINGS = {
    "TITLE": "Agent Portal API",
    "DESCRIPTION": "Catalog of AI agents, their tools and risk; approvals; golden-path scaffolding.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {},
}

# --- API docs (/api/docs/): Swagger UI from the drf-spectacular-sidecar package, served as our own static files ---
SPECTACULAR_SETTINGS |= {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": False, "displayOperationId": False},
}

# --- Metrics ----------------------------------------------------------------------------------------------
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
PROMETHEUS_EXPORT_MIGRATIONS = False

# --- Logging ----------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "json" if IS_PRODUCTION else "text")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text; got {LOG_FORMAT!r}.")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "portal.logging.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": sys.stderr,
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}
