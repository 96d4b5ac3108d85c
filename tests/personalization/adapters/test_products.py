"""ModelAdapter.products reads plain values; it must answer exactly what reading model instances did."""
import pytest
from django.utils import translation

from personalization.adapters import ModelAdapter, ProductInfo
from personalization.adapters.fields import read
from personalization.conf import settings as conf
from shop.models import Category, Product
from tests.personalization.stores import build_store

DEFAULT_FIELDS = {
    "id": "pk",
    "title": "title",
    "category": "category",
    "price": "price",
    "stock": "stock",
    "active": "active",
    "url": "get_absolute_url",
}


@pytest.mark.parametrize("fields", [None, DEFAULT_FIELDS], ids=["demo-settings", "plugin-defaults"])
def test_products_as_values_equal_products_from_instances(db, settings, fields):
    if fields:
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PRODUCT_FIELDS": fields}
    store = build_store(shoppers_per_taste=1, orders=1)
    adapter = ModelAdapter()
    ids = [str(p.pk) for p in store.products.values()] + ["999999"]

    found = adapter.products(ids)

    assert found == {str(p.pk): from_instance(p) for p in Product.objects.filter(pk__in=ids[:-1])}
    assert all(info.url for info in found.values())


def from_instance(product):
    """What an adapter should answer, read from a model instance attribute by attribute."""
    fields = conf.PRODUCT_FIELDS
    return ProductInfo(
        id=str(product.pk),
        title=str(product.title),
        category=str(read(product, fields["category"])),
        price=product.price,
        stock=product.stock,
        active=product.active,
        url=product.get_absolute_url(),
    )


def test_drafts_leave_only_the_url_for_later(db):
    store = build_store(shoppers_per_taste=1, orders=1)
    adapter = ModelAdapter()
    milk = str(store.product("Milk").pk)

    draft = adapter.product_drafts([milk])[milk]

    assert draft.info.title == "Milk" and draft.info.category == "Dairy" and draft.info.url == ""
    assert adapter.finish_product(draft) == adapter.products([milk])[milk]


@pytest.fixture
def urls_made(monkeypatch):
    """The products whose get_absolute_url ran."""
    made = []
    real = Product.get_absolute_url

    def counted(product):
        made.append(product.pk)
        return real(product)

    monkeypatch.setattr(Product, "get_absolute_url", counted)
    return made


def test_a_product_url_is_made_once_per_product_row(db, urls_made):
    store = build_store(shoppers_per_taste=1, orders=1)
    adapter = ModelAdapter()
    milk = store.product("Milk")

    first = adapter.products([milk.pk])[str(milk.pk)].url
    again = adapter.products([milk.pk])[str(milk.pk)].url
    assert first == again == milk.get_absolute_url() and urls_made.count(milk.pk) == 2  # (one just above)

    milk.slug = "fresh-milk"
    milk.save()  # another row: made anew
    assert adapter.products([milk.pk])[str(milk.pk)].url == "/products/fresh-milk/"
    with translation.override("zh-hans"):  # another language may have other URLs
        adapter.products([milk.pk])
    assert urls_made.count(milk.pk) == 4


def test_a_url_that_reads_other_rows_is_not_remembered(db, monkeypatch):
    store = build_store(shoppers_per_taste=1, orders=1)
    adapter = ModelAdapter()
    milk = store.product("Milk")
    monkeypatch.setattr(Product, "get_absolute_url", lambda product: f"/{product.category.slug}/{product.slug}/")

    assert adapter.products([milk.pk])[str(milk.pk)].url == f"/{milk.category.slug}/{milk.slug}/"
    Category.objects.filter(pk=milk.category_id).update(slug="fresh-dairy")  # the product row is the same

    assert adapter.products([milk.pk])[str(milk.pk)].url == f"/fresh-dairy/{milk.slug}/"


def test_an_id_no_product_can_have_finds_nothing_instead_of_failing(db, django_assert_num_queries):
    """ "abc" or a number past the key column's range comes from a client's request: no such product
    (the ORM alone raises on either)."""
    store = build_store(shoppers_per_taste=1, orders=1)
    product = store.product("Milk")

    with django_assert_num_queries(1):
        found = ModelAdapter().products(["abc", "9" * 30, None, product.pk, str(product.pk)])

    assert list(found) == [str(product.pk)]
    assert ModelAdapter().products(["abc", "9" * 30]) == {}


def test_a_product_row_holding_a_dict_is_read_without_remembering_it(db, settings):
    """A product model with a JSONField (here the plugin's Event, whose `data` is one): its rows
    cannot key the memo of instance-only values, which are then read each time."""
    from personalization.models import Event, EventKind

    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PRODUCT_MODEL": "personalization.Event",
        "PRODUCT_FIELDS": {
            "id": "pk", "title": "get_kind_display", "category": "category", "price": "unit_price",
            "stock": "", "active": "", "url": "",
        },
    }
    event = Event.objects.create(kind=EventKind.VIEW, product_id="1", session_key="s", category="Dairy", data={"a": [1]})
    adapter = ModelAdapter()

    found = [adapter.products([event.pk])[str(event.pk)] for _ in range(2)]

    assert found[0] == found[1] and (found[0].title, found[0].category) == (str(EventKind.VIEW.label), "Dairy")
