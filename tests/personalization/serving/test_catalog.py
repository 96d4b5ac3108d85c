"""Products' facts remembered between requests under the catalog token, and forgotten when the catalog changes."""
import pytest

from personalization import state
from personalization.adapters import ModelAdapter, get_adapter
from personalization.adapters.fields import resolve
from personalization.serving import catalog
from shop.models import Category, Order, Product
from shop.signals import order_placed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def forgotten():
    catalog.forget()
    yield
    catalog.forget()


def token():
    return state.catalog_token(state.read(state.NOBODY).catalog)


def facts(*products):
    ids = {str(product.pk) for product in products}
    return {pid: draft.info for pid, draft in catalog.product_drafts(get_adapter(), ids, token()).items()}


def test_remembered_facts_need_no_query_until_the_product_is_saved(make_product, django_assert_num_queries):
    apple = make_product(title="Apple", stock=5)
    assert facts(apple)[str(apple.pk)].stock == 5

    with django_assert_num_queries(0):
        assert facts(apple)[str(apple.pk)].stock == 5

    apple.stock = 0
    apple.save()  # the receivers renew the catalog token

    assert facts(apple)[str(apple.pk)].stock == 0


def test_a_change_without_a_signal_is_seen_once_the_facts_are_too_old(make_product, monkeypatch):
    apple = make_product(stock=5)
    facts(apple)
    Product.objects.filter(pk=apple.pk).update(stock=0)  # no signal

    assert facts(apple)[str(apple.pk)].stock == 5
    later = catalog.time.monotonic() + 31
    monkeypatch.setattr(catalog.time, "monotonic", lambda: later)
    assert facts(apple)[str(apple.pk)].stock == 0


def test_a_placed_order_renews_the_token(make_product, shopper, place_order, django_capture_on_commit_callbacks):
    apple = make_product(stock=5)
    before = token()

    with django_capture_on_commit_callbacks(execute=True):
        order = place_order(shopper, [(apple, 1)])
        order_placed.send(sender=Order, order=order)  # as the store's checkout does

    assert token() != before


def test_a_category_rename_renews_the_token(make_product):
    apple = make_product(category="Fruit")
    before = token()

    Category.objects.filter(name="Fruit").get().save()

    assert token() != before and facts(apple)[str(apple.pk)].category == "Fruit"


def test_with_no_seconds_every_read_is_live(make_product, django_assert_num_queries, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PRODUCT_FACTS_SECONDS": 0}
    apple = make_product()
    facts(apple)

    with django_assert_num_queries(1):
        facts(apple)


def test_without_a_token_every_read_is_live(make_product, django_assert_num_queries):
    apple = make_product()
    catalog.product_drafts(get_adapter(), {str(apple.pk)}, None)

    with django_assert_num_queries(1):
        catalog.product_drafts(get_adapter(), {str(apple.pk)}, None)


def test_the_catalog_models_are_the_product_and_what_its_fields_pass_through():
    assert get_adapter().catalog_models() == (Product, Category)
    assert resolve(Product, "category__name").models == (Product, Category)
    assert resolve(Product, "get_absolute_url", attribute_ok=True).models == (Product,)


def test_an_adapter_that_names_no_catalog_models_is_read_every_time(make_product, django_assert_num_queries):
    class Unwatched(ModelAdapter):
        def catalog_models(self):
            return ()

    adapter, apple = Unwatched(), make_product()
    catalog.product_drafts(adapter, {str(apple.pk)}, token())

    with django_assert_num_queries(1):
        catalog.product_drafts(adapter, {str(apple.pk)}, token())
