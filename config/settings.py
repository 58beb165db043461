"""Cuidar settings: one module, driven by the environment (django-environ).

With no environment at all the system runs on the embedded default: SQLite in ``var/``,
Celery on its filesystem transport in ``var/celery/``, a local-memory cache and DEBUG on.
Point ``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``REDIS_URL`` at PostgreSQL and Redis for
production. Every variable is documented in README.md ("Configuration").

Secrets may also be given as files: ``SECRET_KEY_FILE=/run/secrets/key`` is read when
``SECRET_KEY`` is not set (Docker/Kubernetes secrets).
"""

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CUIDAR_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()


def env_secret(name: str, default: str = "") -> str:
    """Read a secret from ``NAME`` or from the file named by ``NAME_FILE``."""
    value = env.str(name, default="")
    if value:
        return value
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    return default


DEBUG = env.bool("DEBUG", default=True)

# --- Secrets and hosts: no defaults in production -------------------------------------------
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG=False Cuidar refuses to start without it: "
            "set SECRET_KEY (or SECRET_KEY_FILE) to a long random string, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
        )
    SECRET_KEY = "django-insecure-cuidar-development-only-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is not set. With DEBUG=False Cuidar refuses to start without it: "
            "set ALLOWED_HOSTS to the comma-separated host names it serves, "
            "e.g. ALLOWED_HOSTS=cuidar.example.com."
        )
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "config.apps.CuidarAdminConfig",  # replaces django.contrib.admin: the branded site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served as our static files (offline)
    "django_celery_beat",
    # Staff security (issue 19, clinic.accounts): second factors and the lockout.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "axes",
    # Cuidar, in layer order (lower first): see DESIGN.md "Layers".
    "clinic.partner_api",  # the partner API framework: below integrations, above the kernel
    "integrations",
    "clinic",
    "clinic.messaging",  # messages: templates, sending by consent and fallback, receipts, replies
    "clinic.portal",  # the portal shell (sign-in, sessions, profile): above clinic's core
    "clinic.records",  # the clinical record (issue 20): above clinic's core and messaging
    "scheduling",
    "billing",
    "crm",
    "loyalty",
    # Staff accounts (clinic's layer): last, so that its admin module, imported after every
    # other app's, can add re-authentication to admins it does not import (see
    # CUIDAR_REAUTH_ADMIN_MODELS).
    "clinic.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security_headers.ContentSecurityPolicyMiddleware",  # every public page's CSP
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): second factor used
    "django.contrib.messages.middleware.MessageMiddleware",
    # Staff sessions: idle and absolute limits, second factor and forced password change
    # before any admin page, key rotated on a privilege change.
    "clinic.accounts.middleware.StaffSecurityMiddleware",
    "clinic.middleware.ClinicTimezoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # a locked-out sign-in gets the lockout page (429)
]

if not DEBUG:
    # Production serves its collected static files itself (no nginx needed); in
    # development runserver serves them from the apps.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'cuidar.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Web, worker and beat share one SQLite file in the embedded default: WAL lets readers
    # run beside the writer, IMMEDIATE transactions serialise writers instead of failing
    # with "database is locked" half-way through, and the timeout waits for the lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, reading datetimes with psycopg's C loader (config/postgresql).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
        # Parameters bound by the server and statements prepared after their 5th use on a
        # connection: PostgreSQL parses and plans each hot query once per connection, not
        # on every request (half the database CPU of an API list). With the default
        # plan_cache_mode it would keep planning a prepared query over a time range anew
        # on every run (the custom plan, which knows the range, always looks cheaper on
        # paper than the generic one): availability's busy time and the appointment list
        # spent more of PostgreSQL's CPU planning than running. Their generic plans are the
        # same index scans, so prepared statements use them. (Only statements run 5 times
        # on a connection are prepared; one-off queries such as reports are planned with
        # their values.) Behind a pooler in transaction mode that cannot keep prepared
        # statements (PgBouncer without max_prepared_statements), set
        # DATABASE_PREPARED_STATEMENTS=False.
        if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
            DATABASES["default"].setdefault("OPTIONS", {}).update(
                {
                    "server_side_binding": True,
                    "prepare_threshold": 5,
                    "options": "-c plan_cache_mode=force_generic_plan",
                }
            )
    # Persistent connections: a new PostgreSQL connection per request or task costs more
    # than the work itself. (env.db() always sets CONN_MAX_AGE=0, so assign, don't default.)
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cuidar",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "cuidar",
        }
    }

# --- Authentication and staff security (issue 19; clinic/accounts, docs/staff-security.md) -
# Libraries: django-otp (TOTP and recovery codes), django-otp-webauthn (passkeys, on
# django-otp's devices, so one "is this session verified" answers for all three) and
# django-axes (lockout). Sign-in itself is clinic.accounts.views (password, then the second
# factor).
AUTHENTICATION_BACKENDS = [
    "clinic.accounts.backends.AxesBackend",  # refuses a locked-out account or address first
    "django.contrib.auth.backends.ModelBackend",
    "django_otp_webauthn.backends.WebAuthnBackend",  # a passkey signs in (both factors)
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # New password different from the last N (it also records each new one).
    {
        "NAME": "clinic.accounts.validators.PasswordHistoryValidator",
        "OPTIONS": {"history": env.int("CUIDAR_PASSWORD_HISTORY", default=5)},
    },
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "/admin/"
# The absolute lifetime of a staff session (clinic policies may only shorten it); the idle
# timeout is per clinic (accounts.SecurityPolicy, default 30 min for clinical roles).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)
# Switches for the test suite only (tests/conftest.py turns them off, and the tests of
# clinic.accounts on again): production always enforces all three.
CUIDAR_MFA_REQUIRED = True  # a staff user without a verified second factor sees no admin page
CUIDAR_REAUTH_REQUIRED = True  # critical acts ask for password + second factor again
CUIDAR_SESSION_LIMITS = True  # idle and absolute session limits
# "Sudo mode": minutes a re-authentication is good for.
CUIDAR_REAUTH_MINUTES = env.int("CUIDAR_REAUTH_MINUTES", default=5)
# Admins of models of lower (or independent) apps that clinic.accounts wraps with
# re-authentication without their modules importing it (DESIGN.md "Layers").
CUIDAR_REAUTH_ADMIN_MODELS = [
    "integrations.provideraccount",  # provider credentials
    "auth.user",
    "clinic.membership",  # roles
    "partner_api.apikey",
]
# ... and these only to submit (an action, a handled request), not to look.
CUIDAR_REAUTH_ON_SUBMIT_ADMIN_MODELS = ["clinic.privacyrequest"]  # LGPD export, anonymisation
# Lockout (django-axes): after N consecutive failures per account and, separately, per IP
# address; N defaults to 5 and may not pass 10. Locked for AXES_COOLOFF_MINUTES or until an
# administrator unlocks (admin "Sign-in lockouts"). The same message for every username.
AXES_FAILURE_LIMIT = env.int("CUIDAR_LOCKOUT_FAILURES", default=5)
if not 1 <= AXES_FAILURE_LIMIT <= 10:
    raise ImproperlyConfigured("CUIDAR_LOCKOUT_FAILURES must be between 1 and 10.")
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_COOLOFF_TIME = timedelta(minutes=env.int("CUIDAR_LOCKOUT_MINUTES", default=30))
AXES_RESET_ON_SUCCESS = True  # "consecutive" failures
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # failures since the last sign-in, shown after it
AXES_ENABLE_ADMIN = False  # clinic.accounts' lockout admin unlocks, and audits it
AXES_LOCKOUT_CALLABLE = "clinic.accounts.views.lockout_response"
AXES_VERBOSE = False
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]  # behind a proxy: see docs/staff-security.md
# Passkeys: the relying party is the host the page was served from (one of ALLOWED_HOSTS).
OTP_WEBAUTHN_RP_NAME = "Cuidar"
# What the library's start-up checks read; CuidarWebAuthnHelper answers per request.
_PUBLIC_URL = env.str("CUIDAR_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
if not _PUBLIC_URL.startswith("https://"):
    _PUBLIC_URL = "http://localhost"  # development: browsers treat localhost as secure
OTP_WEBAUTHN_RP_ID = _PUBLIC_URL.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
OTP_WEBAUTHN_ALLOWED_ORIGINS = [_PUBLIC_URL]
OTP_WEBAUTHN_HELPER_CLASS = "clinic.accounts.webauthn.CuidarWebAuthnHelper"
OTP_TOTP_ISSUER = "Cuidar"
# django-otp's own per-device delay after a wrong code is off: the lockout above counts
# wrong codes like wrong passwords, and a right code must never be refused as wrong.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
# Password reset and invitation links: valid this long, single use.
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60 * 2)
CUIDAR_INVITATION_DAYS = env.int("CUIDAR_INVITATION_DAYS", default=3)
# Loyalty referrals: the public lead form a patient's referral link opens (``?ref=<code>``),
# e.g. the clinic's site with the CRM's form (docs/loyalty.md).
CUIDAR_REFERRAL_URL = env.str("CUIDAR_REFERRAL_URL", default="/lead/")

# --- Internationalisation: pt-BR first, English available ----------------------------------
LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", _("Brazilian Portuguese")), ("en", _("English"))]
# Apps keep their catalogues in <app>/locale; config's strings (admin site, health) live here.
LOCALE_PATHS = [BASE_DIR / "config" / "locale"]
TIME_ZONE = "America/Sao_Paulo"  # shown by default; every datetime is stored in UTC
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
# Uploads (clinic logos). Production may point MEDIA_ROOT at a mounted volume.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"  # not served: uploads are streamed by the views that own them
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security (production) ------------------------------------------------------------------
# Behind a reverse proxy, the public URL (which Twilio signs) is rebuilt from these headers.
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=not DEBUG)
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers and compose health checks probe over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Celery ---------------------------------------------------------------------------------
# Queues by priority, from DESIGN.md "Periodic jobs": the worker consumes all of them unless
# started with -Q.
CUIDAR_QUEUES = (
    "default",
    "integrations-high",  # < 5 s: inbound messages, payment webhooks
    "integrations",  # < 30 s
    "notifications",  # < 60 s
    "integrations-low",  # < 5 min: campaigns, syncs
    "integrations-retry",  # < 10 min
    # Backups and restore drills (hours; docs/backups.md): pgBackRest must run beside the
    # database, so production gives this queue a worker of its own there (compose.yaml
    # worker-backup) and no other worker takes these jobs.
    "backups",
)
# The filesystem transport has no host, but kombu warns "No hostname was supplied" on every
# connection whose URL names none: the default names the one it would assume.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_DATA_DIR = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DATA_DIR / "queue"),
        "data_folder_out": str(CELERY_DATA_DIR / "queue"),
        "processed_folder": str(CELERY_DATA_DIR / "processed"),
        # Broadcast (control) messages; kombu's default is ./control in the working dir.
        "control_folder": str(CELERY_DATA_DIR / "control"),
        "store_processed": False,
        # How often an idle worker looks for new messages (kombu's default is 1 s). A
        # stopping worker finishes its current poll first, so this also bounds how long
        # Ctrl-C on `make run` waits for it; listing six small folders 5 times a second
        # costs nothing measurable.
        "polling_interval": 0.2,
    }
CELERY_TASK_QUEUES = [Queue(name) for name in CUIDAR_QUEUES]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged after it ran: tasks are safe twice
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery closes Django's database connections around every task unless this is set, and a
# reconnect costs more than an outbox delivery (bench/outbox.py). Workers reuse a connection
# for this many tasks; config/celery.py still drops broken or old ones before each task.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=200)

# --- Web workers ----------------------------------------------------------------------------
# gunicorn kills a web worker whose request has run this many seconds (config/gunicorn.py
# reads the same variable). It also bounds how long an Idempotency-Key stays "in flight"
# after its worker died (clinic.partner_api.idempotency.idempotency_claim_ttl).
CUIDAR_WEB_WORKER_TIMEOUT = env.int("CUIDAR_WEB_WORKER_TIMEOUT", default=30)

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Staff reach the API through their admin session (second factor verified: issue 19);
    # never with a bare password (DRF's default also accepts HTTP Basic).
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    # Partner keys: requests per key (clinic.partner_api.throttling.ApiKeyThrottle), in the cache.
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("CUIDAR_API_RATE", default="600/min")},
    "EXCEPTION_HANDLER": "clinic.partner_api.problems.problem_exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cuidar API",
    "DESCRIPTION": "Partner API of Cuidar, the open-source clinic ERP.",
    "VERSION": "1.0.0",
    # Swagger UI (/api/docs/) and ReDoc from drf-spectacular-sidecar's static files, like
    # every other asset: the docs work offline and their version is pinned in pyproject.toml.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Tags and operation ids from the path after /api/v1/ (``appointments_create``, not
    # ``v1_appointments_create``): what a generated client names its modules and functions.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Errors, headers and integer ids of every partner operation (issue 17).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clinic.partner_api.schema.partner_api_postprocess",
    ],
}

# --- E-mail ---------------------------------------------------------------------------------
# E-mail tracking webhooks (/webhooks/anymail/<esp>/tracking/) authenticate with HTTP basic
# auth "user:password" set here and in each ESP's webhook URL.
ANYMAIL = {"WEBHOOK_SECRET": env_secret("ANYMAIL_WEBHOOK_SECRET", default="") or None}
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Cuidar <nao-responda@localhost>")

# --- Cuidar ---------------------------------------------------------------------------------
# Fernet keys that encrypt provider credentials and webhook secrets at rest, newest first
# (comma-separated). Rotate: put a new key first, run `manage.py rotate_credentials`, then
# drop the old one. Generate one with
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
CUIDAR_FERNET_KEYS = [k.strip() for k in env_secret("CUIDAR_FERNET_KEYS").split(",") if k.strip()]
if not CUIDAR_FERNET_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CUIDAR_FERNET_KEYS is not set. With DEBUG=False Cuidar refuses to start without "
            "it: provider credentials are encrypted with it. Generate one with "
            '`python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`.'
        )
    # Development only: a key derived from the (development) SECRET_KEY.
    CUIDAR_FERNET_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]

# The admin's tenancy mixin, named here so that the integrations app (a lower layer) can use
# it without importing the clinic app (DESIGN.md "Layers").
CUIDAR_SCOPED_ADMIN = "clinic.admin.base.ClinicScopedAdmin"

# Lets a monitor read /health/integrations with "Authorization: Bearer <token>".
CUIDAR_HEALTH_TOKEN = env_secret("CUIDAR_HEALTH_TOKEN")

# --- Integrations (see docs/integrations.md) -----------------------------------------------
# Outbound HTTP: (connect, read) timeouts, and the longest Retry-After slept through inline
# (a longer one is rescheduled by the caller instead of holding a worker).
CUIDAR_HTTP_TIMEOUT = (
    env.float("CUIDAR_HTTP_CONNECT_TIMEOUT", default=3.05),
    env.float("CUIDAR_HTTP_READ_TIMEOUT", default=10.0),
)
CUIDAR_HTTP_RETRY_AFTER_CAP = env.float("CUIDAR_HTTP_RETRY_AFTER_CAP", default=30.0)
# Circuit breakers per (clinic, provider account): open after this many consecutive
# transient failures, for this many seconds, then one trial call. Shared in Redis.
CUIDAR_BREAKER_FAIL_MAX = env.int("CUIDAR_BREAKER_FAIL_MAX", default=5)
CUIDAR_BREAKER_RESET_SECONDS = env.int("CUIDAR_BREAKER_RESET_SECONDS", default=60)
CUIDAR_BREAKER_NAMESPACE = env.str("CUIDAR_BREAKER_NAMESPACE", default="cuidar")
# The chain a clinic uses for a kind while it has no provider account of that kind.
# Console providers record what they would send (development, demos).
CUIDAR_DEFAULT_PROVIDERS = {
    kind: ["console"]
    for kind in ("whatsapp", "sms", "email", "payments", "fiscal", "calendar", "storage")
}
CUIDAR_DEFAULT_PROVIDERS["llm"] = []  # off until a clinic adds an llm account (docs/llm.md)
# The assistant's language models (docs/llm.md). A clinic has none until it adds a provider
# account of kind "llm" (off by default; no default chain). An account without an API key
# in its credentials uses the installation's key for its provider, from the environment.
CUIDAR_LLM_API_KEYS = {
    "openai_compatible": env_secret("CUIDAR_LLM_OPENAI_API_KEY"),
    "anthropic": env_secret("CUIDAR_LLM_ANTHROPIC_API_KEY"),
    "gemini": env_secret("CUIDAR_LLM_GEMINI_API_KEY"),
}
# Read timeout of one model call (s): a patient waits for the reply, and the rules answer
# when every model is slow.
CUIDAR_LLM_TIMEOUT = env.float("CUIDAR_LLM_TIMEOUT", default=12.0)
# Prices in R$ for the cost report (integrations/usage.py): per 1M tokens by model, per
# message by provider; a provider account's own settings override them. JSON, e.g.
# {"llm": {"gpt-4o-mini": {"in": "0.90", "out": "3.60"}}, "whatsapp": {"meta_cloud": "0.40"}}
CUIDAR_PROVIDER_PRICES = env.json("CUIDAR_PROVIDER_PRICES", default={})
# Messages: seconds a send may stay in progress before its worker is presumed dead and
# its outcome unknown (docs/messaging.md); above the longest chain of provider calls.
CUIDAR_MESSAGE_SEND_LEASE = env.int("CUIDAR_MESSAGE_SEND_LEASE", default=300)
# Outbox: attempts before a delivery is a dead letter, and the first backoff step (doubling).
CUIDAR_OUTBOX_MAX_ATTEMPTS = env.int("CUIDAR_OUTBOX_MAX_ATTEMPTS", default=5)
CUIDAR_OUTBOX_BACKOFF_SECONDS = env.int("CUIDAR_OUTBOX_BACKOFF_SECONDS", default=30)
# Inbound webhooks failing transiently (provider 5xx/429, lost connection, deadlock): attempts
# before one is failed for good (the admin's failed list), and the first backoff step (doubling).
CUIDAR_INBOUND_MAX_ATTEMPTS = env.int("CUIDAR_INBOUND_MAX_ATTEMPTS", default=8)
CUIDAR_INBOUND_BACKOFF_SECONDS = env.int("CUIDAR_INBOUND_BACKOFF_SECONDS", default=30)
# Coalesce dispatches into drain tasks (needs a cache shared by all processes: Redis).
CUIDAR_OUTBOX_COALESCE = env.bool("CUIDAR_OUTBOX_COALESCE", default=bool(REDIS_URL))

# The public address of this installation: links in messages (confirm, cancel, claim a
# waitlist slot) and the status callbacks registered at providers start with it.
CUIDAR_PUBLIC_URL = env.str("CUIDAR_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

# Partner webhooks to internal addresses (loopback, private networks, cloud metadata) are
# refused (SSRF). Only a test or a closed lab sets this.
CUIDAR_WEBHOOKS_ALLOW_INTERNAL = env.bool("CUIDAR_WEBHOOKS_ALLOW_INTERNAL", default=False)

# Patient portal: a signed-in patient is signed out after this much inactivity.
CUIDAR_PORTAL_IDLE_MINUTES = env.int("CUIDAR_PORTAL_IDLE_MINUTES", default=30)

# Password of the demo users created by `manage.py seed_demo` (refused when DEBUG is off).
DEMO_PASSWORD = env_secret("DEMO_PASSWORD", default="cuidar-demo")

# --- Backups and restore drills (issue 27, docs/backups.md) ---------------------------------
# CUIDAR_BACKUP_METHOD: "pgbackrest" (PostgreSQL: continuous WAL archiving and full/diff
# backups to an encrypted S3-compatible repository), "sqlite" (the embedded default: online
# copies in var/backups/sqlite with their SHA-256) or "off". By default: sqlite on SQLite;
# pgbackrest on PostgreSQL once a repository is named; off otherwise, which DEBUG=False
# reports as critical on /health/integrations (CUIDAR_BACKUP_REQUIRED).
CUIDAR_BACKUP_S3 = {
    "endpoint": env.str("CUIDAR_BACKUP_S3_ENDPOINT", default="s3.amazonaws.com"),
    "bucket": env.str("CUIDAR_BACKUP_S3_BUCKET", default=""),
    "region": env.str("CUIDAR_BACKUP_S3_REGION", default="us-east-1"),
    "key": env_secret("CUIDAR_BACKUP_S3_KEY"),
    "key_secret": env_secret("CUIDAR_BACKUP_S3_KEY_SECRET"),
    "path": env.str("CUIDAR_BACKUP_S3_PATH", default="/cuidar"),
    "uri_style": env.str("CUIDAR_BACKUP_S3_URI_STYLE", default="host"),  # "path": MinIO
    "port": env.int("CUIDAR_BACKUP_S3_PORT", default=0) or None,
    "verify_tls": env.bool("CUIDAR_BACKUP_S3_VERIFY_TLS", default=True),
    "ca_file": env.str("CUIDAR_BACKUP_S3_CA_FILE", default=""),
}
CUIDAR_BACKUP_REPO2_PATH = env.str("CUIDAR_BACKUP_REPO2_PATH", default="")  # optional, local
CUIDAR_BACKUP_METHOD = env.str(
    "CUIDAR_BACKUP_METHOD",
    default=(
        "sqlite"
        if DATABASES["default"]["ENGINE"].endswith("sqlite3")
        else ("pgbackrest" if CUIDAR_BACKUP_S3["bucket"] or CUIDAR_BACKUP_REPO2_PATH else "off")
    ),
)
CUIDAR_BACKUP_REQUIRED = env.bool("CUIDAR_BACKUP_REQUIRED", default=not DEBUG)
# Encrypts every repository (aes-256-cbc). Losing it loses the backups: keep a copy offline.
CUIDAR_BACKUP_CIPHER_PASS = env_secret("CUIDAR_BACKUP_CIPHER_PASS")
if CUIDAR_BACKUP_METHOD == "pgbackrest" and not CUIDAR_BACKUP_CIPHER_PASS and not DEBUG:
    raise ImproperlyConfigured(
        "CUIDAR_BACKUP_CIPHER_PASS is not set. Backups leave the machine encrypted with it: "
        "set a long random passphrase (`openssl rand -base64 48`) and keep a copy offline."
    )
CUIDAR_BACKUP_DIR = Path(env.str("CUIDAR_BACKUP_DIR", default=str(VAR_DIR / "backups")))
CUIDAR_BACKUP_STANZA = env.str("CUIDAR_BACKUP_STANZA", default="cuidar")
CUIDAR_BACKUP_PGBACKREST_CONFIG = env.str(
    "CUIDAR_BACKUP_PGBACKREST_CONFIG", default="/etc/pgbackrest/pgbackrest.conf"
)
CUIDAR_BACKUP_PG_DATA = env.str("CUIDAR_BACKUP_PG_DATA", default="/var/lib/postgresql/15/main")
CUIDAR_BACKUP_PG_SOCKET_PATH = env.str(
    "CUIDAR_BACKUP_PG_SOCKET_PATH", default="/var/run/postgresql"
)
CUIDAR_BACKUP_PG_USER = env.str("CUIDAR_BACKUP_PG_USER", default="postgres")  # a superuser
CUIDAR_BACKUP_PG_BINDIR = env.str("CUIDAR_BACKUP_PG_BINDIR", default="")  # found if empty
CUIDAR_BACKUP_RUN_AS = env.str("CUIDAR_BACKUP_RUN_AS", default="postgres")  # when run as root
# Retention: full backups kept (weekly: 4 ≈ four weeks of point-in-time recovery) and
# differential ones; WAL is archived at least every ARCHIVE_TIMEOUT seconds (RPO ≤ 1 min).
CUIDAR_BACKUP_RETENTION_FULL = env.int("CUIDAR_BACKUP_RETENTION_FULL", default=4)
CUIDAR_BACKUP_RETENTION_FULL_TYPE = env.str("CUIDAR_BACKUP_RETENTION_FULL_TYPE", default="count")
CUIDAR_BACKUP_RETENTION_DIFF = env.int("CUIDAR_BACKUP_RETENTION_DIFF", default=14)
CUIDAR_BACKUP_ARCHIVE_TIMEOUT = env.int("CUIDAR_BACKUP_ARCHIVE_TIMEOUT", default=60)
CUIDAR_BACKUP_PROCESS_MAX = env.int("CUIDAR_BACKUP_PROCESS_MAX", default=2)
CUIDAR_BACKUP_FULL_WEEKDAY = env.int("CUIDAR_BACKUP_FULL_WEEKDAY", default=6)  # Monday is 0
CUIDAR_BACKUP_SQLITE_KEEP = env.int("CUIDAR_BACKUP_SQLITE_KEEP", default=14)
# Alerts: the last backup older than this (hours; twice: critical), the last good drill
# older than this (days).
CUIDAR_BACKUP_MAX_AGE_HOURS = env.int("CUIDAR_BACKUP_MAX_AGE_HOURS", default=26)
CUIDAR_BACKUP_DRILL_MAX_AGE_DAYS = env.int("CUIDAR_BACKUP_DRILL_MAX_AGE_DAYS", default=8)
CUIDAR_BACKUP_DRILL_DIR = env.str("CUIDAR_BACKUP_DRILL_DIR", default="")  # scratch space
CUIDAR_BACKUP_DRILL_TOLERANCE = env.float("CUIDAR_BACKUP_DRILL_TOLERANCE", default=0.05)
CUIDAR_BACKUP_DRILL_SLACK = env.int("CUIDAR_BACKUP_DRILL_SLACK", default=100)


def _client_error_without_traceback(record) -> bool:
    """A refused request (4xx) is the client's doing: one line, no traceback. Django logs a
    PermissionDenied (403) with the exception's traceback; a 5xx keeps it."""
    if getattr(record, "status_code", 500) < 500:
        record.exc_info = None
        record.exc_text = None
    return True


# Every record is written once, by the root handler. Django's own configuration gives the
# "django" logger a console handler of its own (with DEBUG on) that also propagates to the
# root: each warning, and a 403's traceback, was printed twice. The console providers log
# what they would have sent at INFO (integrations.console), so it shows under `make run`.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"client_error_without_traceback": {"()": lambda: _client_error_without_traceback}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["client_error_without_traceback"]},
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # one INFO line per sign-in; lockouts are WARNING
    },
}
