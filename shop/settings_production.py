"""Settings of the store on a server: shop/settings.py served over HTTPS only.

    export DJANGO_SECRET_KEY=...             # required: long and random, kept out of the repository
    export DJANGO_ALLOWED_HOSTS=shop.example.com,www.shop.example.com
    export DJANGO_SETTINGS_MODULE=shop.settings_production
    python manage.py check --deploy          # no issues expected

Everything else (DATABASE_URL, CACHE_URL, CELERY_BROKER_URL, DJANGO_MEDIA_ROOT) is read as in
shop/settings.py; web processes and workers must run with the same values, the secret key included.
"""
import os

from shop.settings import *  # noqa: F401,F403

DEBUG = False  # whatever DJANGO_DEBUG says: tracebacks and settings are never shown to visitors
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

# HTTPS only: plain HTTP requests are redirected, and cookies never travel without TLS.
SECURE_SSL_REDIRECT = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Behind a proxy that terminates TLS (nginx, a load balancer), Django sees plain HTTP: DJANGO_TLS_PROXY=1
# trusts the proxy's X-Forwarded-Proto header, which the proxy must set itself (never pass on the client's).
if os.environ.get("DJANGO_TLS_PROXY") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# HTTP Strict Transport Security: browsers that have seen the site once refuse plain HTTP for it, on
# every subdomain too, for DJANGO_HSTS_SECONDS (default a year). Start lower (e.g. 3600) on a new
# domain: a browser keeps the rule until it expires, even if HTTPS is later switched off.
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 60 * 60)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
