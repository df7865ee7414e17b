"""Django settings for the portal, read from the environment (see README "Configuration")."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

from portal.env import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    stored_secret,
)
from workflows_app.nexthink.models import NQL_QUERY_ID_PATTERN
from workflows_app.sso.claims import ClaimsConfigError, parse_role_groups

BASE_DIR = Path(__file__).resolve().parent.parent

# Demo mode runs on embedded defaults (SQLite, filesystem broker, the built-in simulator) so
# that one command starts a working portal. Everything else must be configured explicitly.
DEMO_MODE = env_bool("PORTAL_DEMO", False)
DEMO_DIR = Path(env_str("PORTAL_DEMO_DIR", str(BASE_DIR / ".demo")) or BASE_DIR / ".demo")
DEMO_PASSWORD = "demo-portal-2026"

# Off in demo mode too: Django's debug pages list every URL pattern and setting, while the
# portal's own 404 and 500 pages (templates/404.html, 500.html) say what to do.
DEBUG = env_bool("DEBUG", False)
# Served without collectstatic: DEBUG (runserver) and demo mode (WhiteNoise reads the finders).
SERVE_STATIC_FROM_SOURCE = DEBUG or DEMO_MODE
# Demo mode without SECRET_KEY keeps a random one in .demo/ (never a key published here): the
# secret parameters' encryption key derives from it (workflows_app/services/secrets.py).
SECRET_KEY = env_secret("SECRET_KEY", required=not DEMO_MODE) or stored_secret(
    DEMO_DIR / "secret_key"
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEMO_MODE or DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "axes",
    "workflows_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "workflows_app.time_zones.ViewerTimeZoneMiddleware",
    # Last, as django-axes asks: it answers a locked-out sign-in with views/sign_in.locked_out.
    "axes.middleware.AxesMiddleware",
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
                "workflows_app.context_processors.portal",
                "workflows_app.context_processors.navigation",
                "workflows_app.context_processors.time_zone",
            ],
            # `|thousands` in every template, without {% load %}.
            "builtins": ["workflows_app.templatetags.portal"],
        },
    },
]

# Database -------------------------------------------------------------------------------------
_default_db = f"sqlite:///{DEMO_DIR / 'portal.sqlite3'}" if DEMO_MODE else None
_database_url = env_str("DATABASE_URL", _default_db)
if _database_url is None:
    raise ConfigError("DATABASE_URL is required (e.g. postgres://user:pass@db:5432/portal)")
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and IMMEDIATE transactions let the web process and the worker share one SQLite file.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: shared by every process (the Nexthink token lives here) --------------------------------
REDIS_URL = env_str("REDIS_URL", None if DEMO_MODE else "redis://127.0.0.1:6379/0")
if REDIS_URL and not DEMO_MODE:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_str("CACHE_URL", REDIS_URL),
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "portal"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DEMO_DIR / "cache"),
        }
    }

# Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", None) or (
    "filesystem://" if DEMO_MODE else REDIS_URL
)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    # Longer than any countdown we schedule, so Redis never redelivers a message early.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3 * 3600, minimum=60),
}
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DEMO_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(_broker_dir / "out"),
            "data_folder_out": str(_broker_dir / "out"),
            "processed_folder": str(_broker_dir / "processed"),
            "control_folder": str(_broker_dir / "control"),
            "store_processed": False,
        }
    )
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=5)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CATALOGUE_SYNC_MINUTES = env_float("CATALOGUE_SYNC_MINUTES", 10.0, minimum=0.5)
# JSON API (/api/v1/): requests per token per minute (a fixed window in the cache), and how long
# an Idempotency-Key is kept.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
API_IDEMPOTENCY_HOURS = env_int("API_IDEMPOTENCY_HOURS", 24, minimum=1)
BATCH_SWEEP_SECONDS = env_float("BATCH_SWEEP_SECONDS", 60.0, minimum=5)
# Following executions up through NQL (services/follow_up.py): the first interval after a batch
# is sent (later a fifth of the batch's age, up to 30 times it), the horizon after which an
# execution still open is given up as unknown, and the wait before a target of an unknown batch
# that Nexthink's history does not show is called not sent. Demo mode uses seconds.
FOLLOW_UP_SECONDS = env_float("FOLLOW_UP_SECONDS", 3.0 if DEMO_MODE else 30.0, minimum=0.1)
FOLLOW_UP_HORIZON_HOURS = env_float("FOLLOW_UP_HORIZON_HOURS", 24.0, minimum=0.001)
RECONCILE_GRACE_SECONDS = env_float(
    "RECONCILE_GRACE_SECONDS", 30.0 if DEMO_MODE else 900.0, minimum=0
)
FOLLOW_UP_BATCHES_PER_CYCLE = env_int("FOLLOW_UP_BATCHES_PER_CYCLE", 50, minimum=1)
# How often beat looks for batches due a check (each check is planned by the batch itself).
FOLLOW_UP_CYCLE_SECONDS = env_float(
    "FOLLOW_UP_CYCLE_SECONDS", min(10.0, FOLLOW_UP_SECONDS), minimum=0.1
)
# Retention (services/retention.py): final runs older than this many days are removed with their
# targets; the audit log keeps its entries longer. The sweep runs every RETENTION_SWEEP_HOURS.
HISTORY_RETENTION_DAYS = env_int("HISTORY_RETENTION_DAYS", 180, minimum=1)
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 730, minimum=1)
RETENTION_SWEEP_HOURS = env_float("RETENTION_SWEEP_HOURS", 24.0, minimum=0.01)
# The dashboard's daily counts (services/dashboard_counts.py): recent days at every cycle, the
# whole window once an hour.
DASHBOARD_RECOUNT_MINUTES = env_float(
    "DASHBOARD_RECOUNT_MINUTES", 1.0 if DEMO_MODE else 5.0, minimum=0.1
)
# How often beat advances flow runs in progress (services/flow_engine.py); each step's run
# becoming final advances its flow at once, so this only catches lost messages.
FLOW_SWEEP_SECONDS = env_float("FLOW_SWEEP_SECONDS", 30.0, minimum=0.5)
# Four-eyes approval (services/approvals.py): a run on more targets than this waits for an
# approver (0: no size rule, only what curation asks); a request unanswered this long expires.
APPROVAL_ABOVE_TARGETS = env_int("APPROVAL_ABOVE_TARGETS", 0, minimum=0)
APPROVAL_EXPIRY_HOURS = env_float("APPROVAL_EXPIRY_HOURS", 24.0, minimum=0.01)
APPROVAL_SWEEP_SECONDS = env_float("APPROVAL_SWEEP_SECONDS", 60.0, minimum=5)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "sync-catalogue": {
        "task": "workflows_app.tasks.sync_catalogue_task",
        "schedule": CATALOGUE_SYNC_MINUTES * 60,
    },
    "sweep-batches": {
        "task": "workflows_app.tasks.sweep_batches",
        "schedule": BATCH_SWEEP_SECONDS,
    },
    "follow-up": {
        "task": "workflows_app.tasks.follow_up_task",
        "schedule": FOLLOW_UP_CYCLE_SECONDS,
        # A cycle missed while the workers were busy is not worth running late. Its message is
        # small (it leases and queues the checks) and goes first (0, dispatch.INTERACTIVE), so
        # queued bulk batches do not make every cycle expire; the checks it queues are BULK.
        "options": {"expires": FOLLOW_UP_CYCLE_SECONDS, "priority": 0},
    },
    "recount-dashboard": {
        "task": "workflows_app.tasks.recount_dashboard_task",
        "schedule": DASHBOARD_RECOUNT_MINUTES * 60,
        "options": {"expires": DASHBOARD_RECOUNT_MINUTES * 60},
    },
    "sweep-flows": {
        "task": "workflows_app.tasks.sweep_flows_task",
        "schedule": FLOW_SWEEP_SECONDS,
        "options": {"expires": FLOW_SWEEP_SECONDS},
    },
    "expire-approvals": {
        "task": "workflows_app.tasks.expire_approvals_task",
        "schedule": APPROVAL_SWEEP_SECONDS,
        "options": {"expires": APPROVAL_SWEEP_SECONDS},
    },
    "retention": {
        "task": "workflows_app.tasks.retention_task",
        "schedule": RETENTION_SWEEP_HOURS * 3600,
    },
}
# Beat's messages at background priority (services/dispatch.BACKGROUND) unless an entry names its
# own (the follow-up cycle: 0): the Redis broker serves 0 first, batches go at 0 or 3 (bulk).
for _name, _entry in CELERY_BEAT_SCHEDULE.items():
    CELERY_BEAT_SCHEDULE[_name] = {
        **_entry,
        "options": {"priority": 6, **_entry.get("options", {})},  # unless it names its own
    }
del _name, _entry
CELERY_BEAT_SCHEDULE_FILENAME = (
    str(DEMO_DIR / "celerybeat-schedule") if DEMO_MODE else "celerybeat-schedule"
)

# Nexthink -------------------------------------------------------------------------------------
NEXTHINK_INSTANCE = env_str("NEXTHINK_INSTANCE")
NEXTHINK_REGION = env_str("NEXTHINK_REGION")
NEXTHINK_REGIONS = ("us", "eu", "pac", "meta")
_api_default: str | None
_token_default: str | None
if NEXTHINK_INSTANCE and NEXTHINK_REGION:
    if NEXTHINK_REGION not in NEXTHINK_REGIONS:
        raise ConfigError(
            f"NEXTHINK_REGION={NEXTHINK_REGION!r} is not one of {', '.join(NEXTHINK_REGIONS)}"
        )
    _api_default = f"https://{NEXTHINK_INSTANCE}.api.{NEXTHINK_REGION}.nexthink.cloud"
    _token_default = (
        f"https://{NEXTHINK_INSTANCE}-login.{NEXTHINK_REGION}.nexthink.cloud"
        "/oauth2/default/v1/token"
    )
elif DEMO_MODE:
    _sim = f"http://127.0.0.1:{env_int('NEXTHINK_SIMULATOR_PORT', 8765, minimum=1)}"
    _api_default, _token_default = _sim, f"{_sim}/oauth2/default/v1/token"
else:
    _api_default = _token_default = None
NEXTHINK_API_URL = env_str("NEXTHINK_API_URL", _api_default)
NEXTHINK_TOKEN_URL = env_str("NEXTHINK_TOKEN_URL", _token_default)
if not DEMO_MODE and not (NEXTHINK_API_URL and NEXTHINK_TOKEN_URL):
    raise ConfigError(
        "Set NEXTHINK_INSTANCE and NEXTHINK_REGION, or NEXTHINK_API_URL and NEXTHINK_TOKEN_URL"
    )
NEXTHINK_CLIENT_ID = env_secret("NEXTHINK_CLIENT_ID", required=not DEMO_MODE, default="portal-demo")
NEXTHINK_CLIENT_SECRET = env_secret(
    "NEXTHINK_CLIENT_SECRET", required=not DEMO_MODE, default="demo-secret"
)
NEXTHINK_SOURCE = env_str("NEXTHINK_SOURCE", "nexthink-workflows-portal")
NEXTHINK_CONNECT_TIMEOUT = env_float("NEXTHINK_CONNECT_TIMEOUT", 5.0, minimum=0.1)
NEXTHINK_READ_TIMEOUT = env_float("NEXTHINK_READ_TIMEOUT", 30.0, minimum=0.1)
# Submitting batches: a batch Nexthink was unavailable for (nothing sent) is tried again, waits
# doubling from BACKOFF_BASE up to BACKOFF_MAX seconds, until the waits add up to RETRY_MINUTES
# (services/submission.py retry_schedule): a tenant outage that long is ridden out.
NEXTHINK_SUBMIT_RETRY_MINUTES = env_float("NEXTHINK_SUBMIT_RETRY_MINUTES", 15.0, minimum=0)
NEXTHINK_SUBMIT_BACKOFF_BASE = env_float("NEXTHINK_SUBMIT_BACKOFF_BASE", 2.0, minimum=0.01)
NEXTHINK_SUBMIT_BACKOFF_MAX = env_float("NEXTHINK_SUBMIT_BACKOFF_MAX", 120.0, minimum=0.01)
BATCH_SWEEP_GRACE_SECONDS = env_float("BATCH_SWEEP_GRACE_SECONDS", 120.0, minimum=0)
# The NQL API queries an admin saves in Nexthink for the follow-up (README: "Saved NQL queries").
NEXTHINK_EXECUTIONS_QUERY_ID = env_str(
    "NEXTHINK_EXECUTIONS_QUERY_ID", "#portal_workflow_executions"
)
NEXTHINK_RECENT_EXECUTIONS_QUERY_ID = env_str(
    "NEXTHINK_RECENT_EXECUTIONS_QUERY_ID", "#portal_recent_workflow_executions"
)
for _name in ("NEXTHINK_EXECUTIONS_QUERY_ID", "NEXTHINK_RECENT_EXECUTIONS_QUERY_ID"):
    if not re.fullmatch(NQL_QUERY_ID_PATTERN, str(globals()[_name])):
        raise ConfigError(f"{_name} must be a saved NQL query id like #portal_workflow_executions")
# The classic (on-premise) platform's Act API v2 for remote actions (README "Classic remote
# actions"): the web interface's address, a Nexthink user allowed to use the API of remote
# actions, optionally the Engines to target (database UIDs; all when empty).
NEXTHINK_CLASSIC_URL = env_str(
    "NEXTHINK_CLASSIC_URL",
    f"http://127.0.0.1:{env_int('NEXTHINK_SIMULATOR_PORT', 8765, minimum=1)}"
    if DEMO_MODE
    else None,
)
NEXTHINK_CLASSIC_USER = env_str("NEXTHINK_CLASSIC_USER", "portal-classic" if DEMO_MODE else None)
NEXTHINK_CLASSIC_PASSWORD = env_secret(
    "NEXTHINK_CLASSIC_PASSWORD", required=False, default="classic-secret" if DEMO_MODE else None
)
NEXTHINK_CLASSIC_ENGINES = env_list("NEXTHINK_CLASSIC_ENGINES", [])
# The Engines' timeout sent with each call (the web interface's default is 60 s); the portal
# waits that long plus a margin for the answer.
NEXTHINK_CLASSIC_TIMEOUT_SECONDS = env_int("NEXTHINK_CLASSIC_TIMEOUT_SECONDS", 60, minimum=1)
NEXTHINK_CLASSIC_READ_MARGIN = env_float("NEXTHINK_CLASSIC_READ_MARGIN", 10.0, minimum=0)
if NEXTHINK_CLASSIC_TIMEOUT_SECONDS + NEXTHINK_CLASSIC_READ_MARGIN >= CELERY_TASK_SOFT_TIME_LIMIT:
    # The task would be stopped while the web interface may still be asking its Engines.
    raise ConfigError(
        "NEXTHINK_CLASSIC_TIMEOUT_SECONDS + NEXTHINK_CLASSIC_READ_MARGIN must be shorter than "
        f"CELERY_TASK_SOFT_TIME_LIMIT ({CELERY_TASK_SOFT_TIME_LIMIT} s)"
    )
# Devices per call; a TOO_MANY_DEVICES answer splits the batch in halves (nothing ran).
NEXTHINK_CLASSIC_BATCH_SIZE = env_int("NEXTHINK_CLASSIC_BATCH_SIZE", 1000, minimum=1)
# Which Nexthink the portal drives: "cloud" (Workflows API), "classic" (remote actions through
# the Act API) or "both"; by default classic joins in when its address is set.
NEXTHINK_PLATFORMS = env_str("NEXTHINK_PLATFORMS", "both" if NEXTHINK_CLASSIC_URL else "cloud")
if NEXTHINK_PLATFORMS not in ("cloud", "classic", "both"):
    raise ConfigError(f"NEXTHINK_PLATFORMS={NEXTHINK_PLATFORMS!r} is not cloud, classic or both")
if NEXTHINK_PLATFORMS != "cloud" and not (
    NEXTHINK_CLASSIC_URL and NEXTHINK_CLASSIC_USER and NEXTHINK_CLASSIC_PASSWORD
):
    raise ConfigError(
        f"NEXTHINK_PLATFORMS={NEXTHINK_PLATFORMS} needs NEXTHINK_CLASSIC_URL, "
        "NEXTHINK_CLASSIC_USER and NEXTHINK_CLASSIC_PASSWORD (or NEXTHINK_CLASSIC_PASSWORD_FILE)"
    )
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000" if DEMO_MODE else "")

# "Get help" on a self-service fix that did not work (services/escalation.py): the request goes
# by e-mail to HELPDESK_EMAIL and/or to the enabled webhooks that receive run.help_requested
# (console, Webhooks). With neither, employees read HELPDESK_CONTACT_TEXT.
# Demo mode mails the demo helpdesk account, so "Get help" is offered (on the worker's console).
HELPDESK_EMAIL = env_str("HELPDESK_EMAIL", "helpdesk@example.com" if DEMO_MODE else "") or ""
if HELPDESK_EMAIL and not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", HELPDESK_EMAIL):
    raise ConfigError(f"HELPDESK_EMAIL={HELPDESK_EMAIL!r} is not an e-mail address")
HELPDESK_CONTACT_TEXT = env_str(
    "HELPDESK_CONTACT_TEXT", "Call the IT helpdesk or open a ticket on the intranet."
)
# Notifications (README "Notifications and webhooks") -------------------------------------------
# E-mail: SMTP unless EMAIL_BACKEND says otherwise; demo mode prints mails on the worker's console.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEMO_MODE
    else "django.core.mail.backends.smtp.EmailBackend",
)
# Django's file backend writes each mail under this folder (the tests' workers use it as outbox).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", "") or None
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", required=False) or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ConfigError("Set only one of EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL")
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=0.5)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Workflows portal <portal@localhost>")
# An SMTP server that fails is tried this many times in all, waiting EMAIL_RETRY_SECONDS, then
# twice as long each time.
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 4, minimum=1)
EMAIL_RETRY_SECONDS = env_float("EMAIL_RETRY_SECONDS", 60.0, minimum=0)
# Outgoing webhooks (docs/webhooks.md): https only unless WEBHOOKS_ALLOW_HTTP; each delivery is
# tried WEBHOOK_MAX_ATTEMPTS times, waiting WEBHOOK_RETRY_SECONDS, then twice as long each time.
WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP", DEMO_MODE)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6, minimum=1)
WEBHOOK_RETRY_SECONDS = env_float("WEBHOOK_RETRY_SECONDS", 30.0, minimum=0)
WEBHOOK_CONNECT_TIMEOUT = env_float("WEBHOOK_CONNECT_TIMEOUT", 5.0, minimum=0.1)
WEBHOOK_READ_TIMEOUT = env_float("WEBHOOK_READ_TIMEOUT", 5.0, minimum=0.1)
# The deliveries kept per webhook for its log (older ones are removed as new ones come).
WEBHOOK_LOG_KEEP = env_int("WEBHOOK_LOG_KEEP", 200, minimum=1)

# Auth -----------------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Sign-in throttling (django-axes): after SIGN_IN_FAILURE_LIMIT failures for one username, or
# from one address, further sign-ins there are refused for SIGN_IN_COOLOFF_MINUTES. The answer
# is the same for every username, known or not (views/sign_in.locked_out). Addresses are
# REMOTE_ADDR, as in the audit log (services/audit.client_address): never a client's header.
AXES_ENABLED = env_bool("SIGN_IN_THROTTLING", True)
AXES_FAILURE_LIMIT = env_int("SIGN_IN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("SIGN_IN_COOLOFF_MINUTES", 15.0, minimum=0.1))
AXES_LOCKOUT_PARAMETERS = "workflows_app.receivers.lockout_parameters"
AXES_RESET_ON_SUCCESS = True
# Attempts while locked out are refused unchecked and do not push the end of the lockout back.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "workflows_app.views.sign_in.locked_out"
AXES_USERNAME_CALLABLE = "workflows_app.receivers.throttling_username"
AXES_CLIENT_IP_CALLABLE = "workflows_app.services.audit.client_address"
AXES_VERBOSE = False

# Company sign-in (OpenID Connect, mozilla-django-oidc): on when OIDC_RP_CLIENT_ID is set.
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_ENABLED = OIDC_RP_CLIENT_ID is not None
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_RP_CLIENT_SECRET", required=OIDC_ENABLED)
# The issuer (the `iss` of its ID tokens); its endpoints come from
# <issuer>/.well-known/openid-configuration unless all three OIDC_OP_* endpoints are given.
OIDC_ISSUER = env_str("OIDC_ISSUER")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
if OIDC_ENABLED and not OIDC_ISSUER:
    raise ConfigError(
        "OIDC_ISSUER is required with OIDC_RP_CLIENT_ID (e.g. https://login.acme.com)"
    )
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid profile email")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_TOKEN_USE_BASIC_AUTH = env_bool("OIDC_TOKEN_USE_BASIC_AUTH", True)
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0, minimum=0.5)
OIDC_STORE_ACCESS_TOKEN = False
OIDC_STORE_ID_TOKEN = False
OIDC_AUTHENTICATION_CALLBACK_URL = "sso:callback"
OIDC_COMPANY_NAME = env_str("OIDC_COMPANY_NAME", "your company account")
OIDC_UPN_CLAIMS = env_list("OIDC_UPN_CLAIMS", ["upn", "preferred_username", "email"])
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
try:
    OIDC_ROLE_GROUPS = parse_role_groups(env_str("OIDC_ROLE_GROUPS", "") or "")
except ClaimsConfigError as exc:
    raise ConfigError(f"OIDC_ROLE_GROUPS: {exc}") from None
# Whom someone without a portal role should ask (the no-role page).
PORTAL_ACCESS_CONTACT = env_str("PORTAL_ACCESS_CONTACT", "your IT service desk")

# Axes first: it refuses a locked-out sign-in before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    *(["workflows_app.sso.backend.PortalOIDCBackend"] if OIDC_ENABLED else []),
]

SESSION_COOKIE_HTTPONLY = True

# Transport and browser security (README "Security settings") ------------------------------------
# Production defaults assume HTTPS; demo mode and DEBUG serve plain HTTP on 127.0.0.1, where
# Secure-only cookies would never come back and an HTTPS redirect would lead nowhere.
_PLAIN_HTTP = DEBUG or DEMO_MODE
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not _PLAIN_HTTP)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not _PLAIN_HTTP)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not _PLAIN_HTTP)
# Container health checks ask over plain HTTP from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a TLS-terminating proxy, gunicorn sees plain HTTP: trust the proxy's X-Forwarded-Proto
# (only then: a client could send that header itself).
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", 0 if _PLAIN_HTTP else 365 * 24 * 3600, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading commits the whole domain to HTTPS in browsers for months: the operator's choice,
# so it is off by default and Django's reminder about it (security.W021) is silenced.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
X_FRAME_OPTIONS = "DENY"
# No inline script or style anywhere (tests/test_security_headers.py scans the templates): the
# portal's JavaScript and htmx are static files, and htmx is told not to eval or inject styles
# (the htmx-config meta in templates/base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# I18n / static --------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if SERVE_STATIC_FROM_SOURCE
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = SERVE_STATIC_FROM_SOURCE
# Files served at the site's root: /favicon.ico, which browsers ask for whatever the page says.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"refusal_without_traceback": {"()": "portal.log_filters.RefusalWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "urllib3": {"level": "WARNING"},
        # django-axes notes every sign-in at INFO; the audit log keeps them (auth.*).
        "axes": {"level": "WARNING"},
        # Everything reaches the root's one handler: Django's own console handler (DEBUG) would
        # print each record a second time.
        "django": {"handlers": [], "propagate": True},
        # A 403 is one line, never a traceback: a refusal is not an error of the portal.
        "django.request": {"filters": ["refusal_without_traceback"]},
        "django.security": {"filters": ["refusal_without_traceback"]},
    },
}
