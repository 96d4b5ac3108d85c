"""`manage.py check` of an Oscar store configured with the plugin's preset."""
from django.core.management import call_command


def test_the_oscar_store_passes_manage_py_check_without_warnings():
    call_command("check", fail_level="WARNING")
