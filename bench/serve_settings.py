"""Settings of the server that bench/serve.py starts: the demo store's, plus what a production
server has (DEBUG off, persistent database connections, one cache all workers share), throttle rates
no bench reaches, and its own URLconf with the trivial endpoint it compares with."""
import os

os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-secret")  # before shop.settings, which needs one

from shop.settings import *  # noqa: E402,F401,F403
from shop.settings import REST_FRAMEWORK  # noqa: E402

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "serve_urls"
MEDIA_ROOT = os.environ["BENCH_MEDIA_ROOT"]
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405

if os.environ.get("BENCH_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",  # as the demo store's CACHE_URL
            "LOCATION": os.environ["BENCH_REDIS_URL"],
            "KEY_PREFIX": os.environ["BENCH_CACHE_PREFIX"],
        }
    }
else:  # one cache per worker; large enough for every shopper's entries
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 2_000_000},
        }
    }

from personalization.api.rates import DEFAULT_RATES  # noqa: E402  (no DRF import while settings load)

# Throttles still run (their cache reads and writes are part of every request), at rates no bench reaches.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **{scope: "1000000/s" for scope in DEFAULT_RATES},
        "bench.ping.anon": "1000000/s",
        "bench.ping.user": "1000000/s",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"personalization": {"handlers": ["console"], "level": "WARNING"}},
}
