"""Installing the plugin is configuration; mistakes are reported by `manage.py check` with a hint."""
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from personalization.checks import check_settings
from personalization.conf import DEFAULTS
from personalization.conf import settings as conf

pytestmark = pytest.mark.django_db


def config(**changes):
    from django.conf import settings

    return {**settings.PERSONALIZATION, **changes}


def ids(errors):
    return [error.id for error in errors]


def test_the_demo_store_configuration_passes_every_check():
    assert check_settings() == []


def test_defaults_fill_what_the_store_leaves_out():
    assert conf.RETENTION_DAYS == DEFAULTS["RETENTION_DAYS"]
    assert conf.PRODUCT_FIELDS["url"] == "get_absolute_url"  # nested dicts merge key by key


def test_override_settings_takes_effect_at_once():
    with override_settings(PERSONALIZATION=config(RETENTION_DAYS=7)):
        assert conf.RETENTION_DAYS == 7
    assert conf.RETENTION_DAYS == DEFAULTS["RETENTION_DAYS"]


def test_an_unknown_setting_is_rejected():
    with override_settings(PERSONALIZATION=config(RETENTION_DAZE=7)):
        with pytest.raises(ImproperlyConfigured, match="RETENTION_DAZE"):
            conf.RETENTION_DAYS
        assert ids(check_settings()) == ["personalization.E001"]


def test_an_unknown_field_key_is_rejected():
    with override_settings(PERSONALIZATION=config(PRODUCT_FIELDS={"colour": "colour"})):
        [error] = check_settings()
    assert error.id == "personalization.E001"
    assert "PRODUCT_FIELDS.colour" in error.msg


def test_a_wrong_model_path_is_reported_with_a_hint():
    with override_settings(PERSONALIZATION=config(PRODUCT_MODEL="shop.Produce")):
        [error] = check_settings()
    assert error.id == "personalization.E002"
    assert "'shop.Produce' is not an installed model" in error.msg
    assert "app_label.ModelName" in error.hint


def test_a_wrong_field_name_is_reported_with_the_model_and_a_hint():
    fields = {"user": "cart__owner", "session_key": "cart__session_key", "product": "product", "quantity": "quantity"}
    with override_settings(PERSONALIZATION=config(CART_LINE_FIELDS=fields)):
        [error] = check_settings()
    assert error.id == "personalization.E003"
    assert "'cart__owner' does not exist on shop.CartLine" in error.msg
    assert "cart__user" in error.hint


def test_a_missing_required_field_is_reported():
    fields = {"user": "cart__user", "session_key": "cart__session_key", "product": "product", "quantity": None}
    with override_settings(PERSONALIZATION=config(CART_LINE_FIELDS=fields)):
        assert ids(check_settings()) == ["personalization.E006"]


def test_a_signal_path_that_does_not_import_is_reported():
    with override_settings(PERSONALIZATION=config(ORDER_PLACED_SIGNAL="shop.signals.order_shipped")):
        assert ids(check_settings()) == ["personalization.E004"]


def test_an_adapter_that_is_not_a_store_adapter_is_reported():
    with override_settings(PERSONALIZATION=config(ADAPTER="collections.OrderedDict")):
        assert ids(check_settings()) == ["personalization.E005"]


def test_manage_py_check_shows_the_error():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with override_settings(PERSONALIZATION=config(PRODUCT_MODEL="shop.Produce")):
        with pytest.raises(SystemCheckError, match="personalization.E002"):
            call_command("check")


def test_a_line_field_with_many_values_per_line_is_an_error_with_an_example():
    fields = {"user": "cart__lines__cart__user", "session_key": "cart__session_key", "product": "product", "quantity": "quantity"}
    with override_settings(PERSONALIZATION=config(CART_LINE_FIELDS=fields)):
        [error] = check_settings()
    assert error.id == "personalization.E007"
    assert "through 'cart__lines'" in error.msg and "'cart__user'" in error.hint


def test_only_price_stock_and_category_may_have_many_values_per_product():
    fields = {"title": "category__products__title", "category": "category__products__category__name"}
    with override_settings(PERSONALIZATION=config(PRODUCT_FIELDS=fields)):
        errors = check_settings()
    assert ids(errors) == ["personalization.E008"]  # the category may: every name is kept
    assert "'title'" in errors[0].msg and "lowest" in errors[0].hint


def test_a_cart_line_filter_on_a_missing_field_is_reported():
    with override_settings(PERSONALIZATION=config(CART_LINE_FILTER={"cart__state": "open"})):
        [error] = check_settings()
    assert error.id == "personalization.E009" and "cart__session_key" in error.msg


def test_a_cart_without_a_session_column_needs_the_shopper_middleware(settings):
    fields = {"user": "cart__user", "session_key": None, "product": "product", "quantity": "quantity"}
    with override_settings(PERSONALIZATION=config(CART_LINE_FIELDS=fields)):
        [warning] = check_settings()
        assert warning.id == "personalization.W001" and "ShopperMiddleware" in warning.hint
        with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, "personalization.middleware.ShopperMiddleware"]):
            assert check_settings() == []


def test_template_tags_without_the_request_context_processor_are_warned_about(settings):
    from personalization.checks import check_templates

    assert check_templates() == []
    engine = settings.TEMPLATES[0]
    processors = [p for p in engine["OPTIONS"]["context_processors"] if not p.endswith(".request")]
    settings.TEMPLATES = [{**engine, "OPTIONS": {**engine["OPTIONS"], "context_processors": processors}}]

    [warning] = check_templates()
    assert warning.id == "personalization.W002" and "context_processors.request" in warning.hint


def test_a_page_template_that_does_not_exist_is_warned_about():
    from personalization.checks import check_templates

    with override_settings(PERSONALIZATION=config(PAGE_TEMPLATE="store/page.html")):
        [warning] = check_templates()
    assert warning.id == "personalization.W003" and "'store/page.html'" in warning.msg
