"""KetaClinic settings: one module, every deployment choice from an environment variable.

Defaults are safe for production (DEBUG off, HTTPS-only cookies, HSTS). `make demo` and the test
suite relax only what they must, through the same variables (see README "Configuration").
"""

from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

# Demo mode may switch off the staff MFA requirement; every page then shows a "demo mode" banner.
DEMO_MODE = env_bool("KETACLINIC_DEMO", False)

# The test suite runs over plain HTTP on the test client and a local live server.
TESTING = env_bool("KETACLINIC_TESTING", False) or "pytest" in sys.modules

_INSECURE_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or DEMO_MODE or TESTING):
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (50+ random characters) in production.")
    SECRET_KEY = _INSECURE_KEY

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "django_htmx",
    "template_partials",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "ketaclinic.core",
    "ketaclinic.accounts",
    "ketaclinic.audit",
    "ketaclinic.patients",
    "ketaclinic.screening",
    "ketaclinic.courses",
    "ketaclinic.measures",
    "ketaclinic.portal",
    "ketaclinic.controlled_substances",
    "ketaclinic.treatment_sessions",
    "ketaclinic.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ketaclinic.audit.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before the idle timeout, which leaves a "you were signed out" message for the login page.
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "ketaclinic.accounts.middleware.IdleTimeoutMiddleware",
    "ketaclinic.accounts.middleware.MfaRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "ketaclinic.core.middleware.NoStoreMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        # Django's backend, freeing each page's context as soon as it is written (see the module).
        "BACKEND": "ketaclinic.core.templates.DjangoTemplates",
        "NAME": "django",  # the alias Django's own backend has (engines["django"])
        "DIRS": [BASE_DIR / "ketaclinic" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ketaclinic.core.context_processors.clinic_context",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL selects PostgreSQL (production and CI); without it an embedded SQLite file is used.
_default_sqlite = f"sqlite:///{BASE_DIR / 'var' / 'ketaclinic.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", _default_sqlite),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers never deadlock on lock upgrade;
    # WAL + synchronous=FULL keeps every acknowledged commit (security.md R25).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
    }
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get("SQLITE_TEST_NAME")
elif env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # Compiled hot-path queries and the audit append run as server-side prepared statements
    # (ketaclinic.core.compiled_query); Django's other queries bind on the client and are never
    # prepared, whatever this number. Behind a transaction-mode pooler without prepared
    # statement support (PgBouncer < 1.21), set DATABASE_PREPARED_STATEMENTS=0.
    DATABASES["default"]["OPTIONS"] = {"prepare_threshold": 5}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # must be first: refuses locked-out credentials
    "django.contrib.auth.backends.ModelBackend",
]
# NIST SP 800-63B: length and a breached/common-password check, no composition rules.
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# django-axes: lock an account after repeated failures from one address (security.md R4).
AXES_FAILURE_LIMIT = env_int("KETACLINIC_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("KETACLINIC_LOCKOUT_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Staff must complete TOTP before reaching any page; only demo mode may switch this off.
KETACLINIC_REQUIRE_STAFF_MFA = env_bool("KETACLINIC_REQUIRE_STAFF_MFA", True)
if DEMO_MODE:
    KETACLINIC_REQUIRE_STAFF_MFA = env_bool("KETACLINIC_DEMO_REQUIRE_MFA", False)
elif not KETACLINIC_REQUIRE_STAFF_MFA:
    # Without demo mode nothing would tell users that two-step sign-in is off.
    raise ImproperlyConfigured(
        "KETACLINIC_REQUIRE_STAFF_MFA=0 is allowed only with KETACLINIC_DEMO=1 (demo banner)."
    )
OTP_TOTP_ISSUER = "KetaClinic"

# Idle timeout (ONC (d)(5), HIPAA 164.312(a)(2)(iii)): sign out after this many idle minutes.
KETACLINIC_IDLE_TIMEOUT_MINUTES = env_int("KETACLINIC_IDLE_TIMEOUT_MINUTES", 15)
SESSION_COOKIE_AGE = 12 * 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Personal access tokens for the API expire after this many days unless set shorter.
KETACLINIC_TOKEN_MAX_DAYS = env_int("KETACLINIC_TOKEN_MAX_DAYS", 90)

# --- HTTP security --------------------------------------------------------------------------
HTTPS = env_bool("KETACLINIC_HTTPS", not (DEBUG or DEMO_MODE or TESTING))
SECURE_SSL_REDIRECT = env_bool("KETACLINIC_SSL_REDIRECT", HTTPS)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # htmx sends the token from hx-headers on <body>, see base.html
SECURE_HSTS_SECONDS = env_int("KETACLINIC_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("KETACLINIC_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Static files, i18n ---------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "ketaclinic" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("KETACLINIC_MANIFEST_STATIC", not (DEBUG or DEMO_MODE or TESTING))
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = env_bool("KETACLINIC_STATIC_FINDERS", DEBUG or DEMO_MODE or TESTING)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "no-reply@ketaclinic.invalid")

# --- Logging: errors to stderr, never PHI in messages (security.md R29) --------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("KETACLINIC_LOG_LEVEL", "WARNING")},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "axes": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

# --- Background work -----------------------------------------------------------------------
# Reminders and deadline checks run in `ketaclinic worker` (django-tasks database backend).
TASKS = {
    "default": {
        "BACKEND": os.environ.get("KETACLINIC_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# --- Clinic defaults ------------------------------------------------------------------------
KETACLINIC_CRISIS_LINE = os.environ.get("KETACLINIC_CRISIS_LINE", "988")

# --- Measurement-based care and the patient portal ------------------------------------------
# Absolute address of this installation, for the one-time questionnaire links sent by email/SMS.
KETACLINIC_BASE_URL = os.environ.get("KETACLINIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Text messages: ketaclinic.core.sms.ConsoleSmsBackend prints them (demo); a gateway is one class.
KETACLINIC_SMS_BACKEND = os.environ.get(
    "KETACLINIC_SMS_BACKEND", "ketaclinic.core.sms.ConsoleSmsBackend"
)
# How often the worker schedules questionnaires, sends reminders and escalates alerts.
KETACLINIC_MEASURES_TICK_SECONDS = env_int("KETACLINIC_MEASURES_TICK_SECONDS", 300)

# --- Controlled substances (clinical.md §8) -------------------------------------------------
# Ledger records are kept at least 2 years (21 CFR 1304.04(a)); some states want longer. Nothing
# in KetaClinic ever deletes ledger rows; this number is what reports promise inspectors.
KETACLINIC_CS_RETENTION_YEARS = env_int("KETACLINIC_CS_RETENTION_YEARS", 2)
if KETACLINIC_CS_RETENTION_YEARS < 2:
    raise ImproperlyConfigured("KETACLINIC_CS_RETENTION_YEARS must be at least 2 (21 CFR 1304.04).")
# Months between DEA inventories: 24 is the federal biennial rule; some states require 12.
KETACLINIC_CS_INVENTORY_MONTHS = env_int("KETACLINIC_CS_INVENTORY_MONTHS", 24)
# Closure days besides weekends and US federal holidays that do not count as business days for
# the one-business-day DEA theft/loss notice (ISO dates, comma-separated).
KETACLINIC_CS_EXTRA_HOLIDAYS = env_list("KETACLINIC_CS_EXTRA_HOLIDAYS", [])
for _day in KETACLINIC_CS_EXTRA_HOLIDAYS:
    try:
        date.fromisoformat(_day)
    except ValueError:
        raise ImproperlyConfigured(
            f"KETACLINIC_CS_EXTRA_HOLIDAYS: {_day!r} is not a YYYY-MM-DD date."
        ) from None
