"""The store's settings: a secret key from the environment, DEBUG off by default, HTTPS in production.

Each case starts Python afresh with the environment it is about: settings are read once, at import.
"""
import os
import subprocess
import sys

from django.conf import settings
from django.core.management.utils import get_random_secret_key

SERVER_ENVIRONMENT = {
    name: value
    for name, value in os.environ.items()
    if name not in {"PYTEST_VERSION", "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE"}
}


def run_python(*args, **environment):
    """Runs the repository's Python outside pytest, with the server's environment and `environment`."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env={**SERVER_ENVIRONMENT, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def setting(name, settings_module="shop.settings", **environment):
    done = run_python("-c", f"import {settings_module} as s; print(repr(s.{name}))", **environment)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_settings_refuse_to_load_without_a_secret_key_and_say_how_to_set_one():
    done = run_python("-c", "import shop.settings")

    assert done.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in done.stderr
    assert "get_random_secret_key" in done.stderr


def test_the_secret_key_comes_from_django_secret_key():
    assert setting("SECRET_KEY", DJANGO_SECRET_KEY="from-the-environment") == "'from-the-environment'"


def test_debug_is_off_unless_django_debug_is_1():
    key = get_random_secret_key()

    assert setting("DEBUG", DJANGO_SECRET_KEY=key) == "False"
    assert setting("DEBUG", DJANGO_SECRET_KEY=key, DJANGO_DEBUG="true") == "False"
    assert setting("DEBUG", DJANGO_SECRET_KEY=key, DJANGO_DEBUG="1") == "True"


def test_the_production_settings_keep_debug_off_whatever_django_debug_says():
    key = get_random_secret_key()

    assert setting("DEBUG", "shop.settings_production", DJANGO_SECRET_KEY=key, DJANGO_DEBUG="1") == "False"


def test_the_production_settings_pass_the_deploy_check_without_a_warning():
    done = run_python(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING", "--settings", "shop.settings_production",
        DJANGO_SECRET_KEY=get_random_secret_key(),
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_the_demo_settings_fail_the_deploy_check():
    """The check does see the demo's settings: the production module is what makes it pass."""
    done = run_python(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY=get_random_secret_key()
    )

    assert done.returncode != 0
    assert "security.W008" in done.stderr + done.stdout
