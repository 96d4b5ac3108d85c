"""ModelAdapter.products reads plain values; it must answer exactly what reading model instances did."""
import pytest

from personalization.adapters import ModelAdapter
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

    assert found == adapter._product_instances(ids)
    assert all(info.url for info in found.values())


def test_drafts_leave_only_the_url_for_later(db):
    store = build_store(shoppers_per_taste=1, orders=1)
    adapter = ModelAdapter()
    milk = str(store.product("Milk").pk)

    draft = adapter.product_drafts([milk])[milk]

    assert draft.info.title == "Milk" and draft.info.category == "Dairy" and draft.info.url == ""
    assert adapter.finish_product(draft) == adapter.products([milk])[milk]
