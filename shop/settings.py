"""Settings of the demo store. The database comes from DATABASE_URL (default: SQLite).

The secret key comes from DJANGO_SECRET_KEY and DEBUG is off unless DJANGO_DEBUG=1: `make demo` sets
both for the demo, and a server runs shop/settings_production.py (HTTPS) on top of these.
"""
import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY and "PYTEST_VERSION" in os.environ:
    # pytest (8.2 and later) sets PYTEST_VERSION while it runs: the tests, and the workers they start, share this key.
    SECRET_KEY = "tests-only-not-secret"
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Set it to a long random value kept out of the repository, e.g. "
        "export DJANGO_SECRET_KEY=\"$(python -c 'from django.core.management.utils import get_random_secret_key; "
        "print(get_random_secret_key())')\" (`make demo` sets a demo key by itself)."
    )
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the API docs page's Swagger UI, served from static files (no CDN)
    "django_celery_beat",  # the plugin's schedules (retraining, purging, coupons), editable in the admin
    # The analytics dashboard's time-series charts (README, "Dashboard"). After django.contrib.admin on
    # purpose: the admin index keeps Django's template and links to the Personalization dashboard.
    "admin_tools_stats",
    "django_nvd3",
    "shop",
    "personalization",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware: LocaleMiddleware that follows LANGUAGE_CODE and the footer's choice.
    "shop.middleware.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop.urls"

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
                "shop.context_processors.cart",
            ],
        },
    },
]

WSGI_APPLICATION = "shop.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Write-ahead logging: readers don't block the writer and a commit costs one sync, not several.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
    )
    # The tests' database is a file, as the store's is; in Django's default, a shared in-memory database,
    # a connection fails at once on a table another one is writing instead of waiting its turn, so
    # simultaneous checkouts (tests/shop/test_checkout_concurrency.py) could not be tested.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"shop-tests-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A cache shared by every process, web and workers (CACHE_URL=redis://127.0.0.1:6379/1): a newly
# activated model is seen at once and the recommendations workers precompute are served. Without
# it each process caches in its own memory. django-redis keeps one client per process (Django's own
# Redis backend builds a client for every cache call, a measurable share of a cached API request).
# `make demo` runs a worker beside the web process without Redis: they share a file cache
# (CACHE_DIR=var/cache), which `manage.py personalization_doctor` accepts as shared on one host.
if os.environ.get("CACHE_URL"):
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": os.environ["CACHE_URL"]}}
elif os.environ.get("CACHE_DIR"):
    FILE_CACHE = "django.core.cache.backends.filebased.FileBasedCache"
    CACHES = {"default": {"BACKEND": FILE_CACHE, "LOCATION": os.environ["CACHE_DIR"]}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# The demo's language: LANGUAGE_CODE=zh-hans make demo; a visitor may pick another in the footer.
LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# The store's catalog (shop/ and templates/); the plugin ships its own in personalization/locale.
LOCALE_PATHS = [BASE_DIR / "shop" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# django-admin-charts loads d3 and nvd3 from these static files (shipped by the plugin), never from a CDN.
ADMIN_CHARTS_D3_JS_PATH = "personalization/vendor/d3-3.3.13/d3.min.js"
ADMIN_CHARTS_NVD3_JS_PATH = "personalization/vendor/nvd3-1.8.6/nv.d3.min.js"
ADMIN_CHARTS_NVD3_CSS_PATH = "personalization/vendor/nvd3-1.8.6/nv.d3.min.css"
MEDIA_URL = "media/"
# Trained model artifacts live here; workers and web processes must share it (or set a shared storage).
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Celery (shop/celery.py; README, "Operations"). Production and CI: Redis, CELERY_BROKER_URL=redis://host:6379/0
# (results go to the same Redis unless CELERY_RESULT_BACKEND says otherwise). Default: an embedded
# broker, kombu's filesystem transport under var/celery/, so `make demo` runs a real worker without a
# server; it serves the workers of one host only.
EMBEDDED_BROKER_DIR = BASE_DIR / "var" / "celery"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost//")
# Queueing a task tries the broker twice, 0.2 s apart (see below the result backend's retries).
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(EMBEDDED_BROKER_DIR / "queue"),
        "data_folder_out": str(EMBEDDED_BROKER_DIR / "queue"),
        "control_folder": str(EMBEDDED_BROKER_DIR / "control"),
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else "rpc://" if CELERY_BROKER_URL.startswith(("amqp://", "amqps://"))
    else f"file://{EMBEDDED_BROKER_DIR / 'results'}"
)
CELERY_RESULT_EXPIRES = 7 * 24 * 60 * 60
# With the broker down, queueing a task (the admin's "retrain now") gives up at the first refused
# connection instead of retrying for 6 to 19 s: the page then says the task could not be queued.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": {"max_retries": 0}}
CELERY_TIMEZONE = TIME_ZONE
# Schedules are django-celery-beat rows: `migrate` creates the plugin's, the admin edits them.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A worker busy training for minutes does not hold back messages other workers could take.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"personalization": {"handlers": ["console"], "level": "INFO"}},
}

# The store's side of the plugin: which models and fields hold products, cart lines and order lines.
PERSONALIZATION = {
    "PRODUCT_MODEL": "shop.Product",
    "PRODUCT_FIELDS": {
        "title": "title",
        "category": "category__name",
        "price": "price",
        "stock": "stock",
        "active": "active",
    },
    "CART_LINE_MODEL": "shop.CartLine",
    "CART_LINE_FIELDS": {
        "user": "cart__user",
        "session_key": "cart__session_key",
        "product": "product",
        "quantity": "quantity",
    },
    "ORDER_LINE_MODEL": "shop.OrderLine",
    "ORDER_LINE_FIELDS": {
        "order": "order",
        "user": "order__user",
        "product": "product",
        "quantity": "quantity",
        "unit_price": "unit_price",
        "ordered_at": "order__placed_at",
    },
    "ORDER_PLACED_SIGNAL": "shop.signals.order_placed",
}

# The plugin's API (/api/personalization/): session (the store's pages) and token (apps) sign-in.
# Token first: an unauthenticated request is answered 401 with a WWW-Authenticate header.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The API's throttles: per view, for anonymous shoppers (by address) and signed-in ones (by account).
    # Their rates default to personalization.api.rates.DEFAULT_RATES; set any of them here to
    # change it, e.g. "DEFAULT_THROTTLE_RATES": {"personalization.events.anon": "100/min"}.
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Personalization API",
    "DESCRIPTION": "Recommendations, cart predictions, coupons and shopper events of the demo store.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files: the docs page loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
