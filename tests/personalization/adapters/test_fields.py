"""One field-path reader for the checks and the run time: foreign keys, reverse foreign keys,
many-to-many (plain and through a model) and nullable relations, reduced in the database."""
import pytest
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps

from personalization.adapters import ModelAdapter, ProductInfo
from personalization.adapters.fields import FieldPathError, resolve
from personalization.conf import DEFAULTS


@pytest.fixture
def store(transactional_db):
    """A catalog shaped like Oscar's: offers per item (reverse FK), shelves (M2M), tags through a
    model, an optional brand (nullable FK), and a GenericForeignKey."""
    with isolate_apps("shop"):

        class Base(models.Model):
            class Meta:
                abstract, app_label = True, "shop"

        class PathBrand(Base):
            name = models.CharField(max_length=20)

        class PathShelf(Base):
            name = models.CharField(max_length=20)

        class PathTag(Base):
            name = models.CharField(max_length=20)

        class PathItem(Base):
            title = models.CharField(max_length=20)
            public = models.BooleanField(default=True)
            brand = models.ForeignKey(PathBrand, null=True, on_delete=models.SET_NULL)
            shelves = models.ManyToManyField(PathShelf)
            tags = models.ManyToManyField(PathTag, through="PathItemTag")
            content_type = models.ForeignKey(ContentType, null=True, on_delete=models.SET_NULL)
            object_id = models.PositiveIntegerField(null=True)
            source = GenericForeignKey("content_type", "object_id")

            def get_absolute_url(self):
                return f"/items/{self.pk}/"

        class PathItemTag(Base):
            item = models.ForeignKey(PathItem, on_delete=models.CASCADE)
            tag = models.ForeignKey(PathTag, on_delete=models.CASCADE)

        class PathOffer(Base):
            item = models.ForeignKey(PathItem, related_name="offers", on_delete=models.CASCADE)
            price = models.DecimalField(max_digits=8, decimal_places=2)
            in_stock = models.PositiveIntegerField()
            allocated = models.IntegerField(null=True)

        created = [PathBrand, PathShelf, PathTag, PathItem, PathItemTag, PathOffer]
        with connection.schema_editor() as editor:
            for model in created:
                editor.create_model(model)
        try:
            yield {model.__name__: model for model in created}
        finally:
            with connection.schema_editor() as editor:
                for model in reversed(created):
                    editor.delete_model(model)


def adapter_for(model, **fields):
    """A ModelAdapter reading `model` (an isolated model that settings cannot name)."""
    adapter = ModelAdapter.__new__(ModelAdapter)
    adapter.product_model, adapter.product_fields = model, {**DEFAULTS["PRODUCT_FIELDS"], **fields}
    adapter.cart_line_model = adapter.order_line_model = None
    return adapter


def test_paths_through_each_kind_of_relation_resolve_with_their_cardinality(store):
    item = store["PathItem"]
    assert not resolve(item, "brand__name").many  # a (nullable) foreign key: one value
    offers = resolve(item, "offers__price")
    assert offers.many and offers.through == "offers"  # a reverse foreign key
    assert resolve(item, "shelves__name").many  # many-to-many
    assert resolve(item, "tags__name").through == "tags"  # many-to-many through a model
    assert resolve(item, "get_absolute_url", attribute_ok=True).attribute


def test_a_typo_names_the_step_and_the_paths_that_exist(store):
    with pytest.raises(FieldPathError) as caught:
        resolve(store["PathItem"], "offers__prise")
    assert "has no field 'prise'" in str(caught.value)
    assert "offers__price" in caught.value.hint and "offers__in_stock" in caught.value.hint


def test_a_generic_foreign_key_cannot_be_followed(store):
    with pytest.raises(FieldPathError) as caught:
        resolve(store["PathItem"], "source__name")
    assert "GenericForeignKey" in str(caught.value) and "object id" in caught.value.hint


def test_a_path_past_a_plain_field_is_refused(store):
    with pytest.raises(FieldPathError, match="'title' is not a relation"):
        resolve(store["PathItem"], "title__name")


def test_many_valued_values_are_reduced_in_the_database(store):
    m = store
    pantry, bakery = m["PathShelf"].objects.create(name="Pantry"), m["PathShelf"].objects.create(name="Bakery")
    bread = m["PathItem"].objects.create(title="Bread")
    bread.shelves.add(pantry, bakery)
    m["PathOffer"].objects.create(item=bread, price="5.00", in_stock=3, allocated=1)
    m["PathOffer"].objects.create(item=bread, price="4.00", in_stock=2, allocated=None)
    salt = m["PathItem"].objects.create(title="Salt", brand=m["PathBrand"].objects.create(name="Maldon"), public=False)
    adapter = adapter_for(
        m["PathItem"], category="shelves__name", price="offers__price", stock="offers__in_stock",
        stock_allocated="offers__allocated", active="public",
    )  # fmt: skip

    with CaptureQueriesContext(connection) as queries:
        found = adapter.products([bread.pk, salt.pk])

    assert found[str(bread.pk)] == ProductInfo(
        id=str(bread.pk), title="Bread", category="Bakery", price=4, stock=4, active=True,
        url=f"/items/{bread.pk}/", categories=("Bakery", "Pantry"),
    )  # fmt: skip
    # No offer: nothing to sell (stock 0), no price; no shelf: no category.
    assert found[str(salt.pk)] == ProductInfo(
        id=str(salt.pk), title="Salt", category="", price=None, stock=0, active=False, url=f"/items/{salt.pk}/"
    )
    assert len(queries) == 2  # the products with their reduced values; every shelf name


def test_a_through_model_and_a_nullable_foreign_key_read_like_any_path(store):
    m = store
    tea = m["PathItem"].objects.create(title="Tea")
    for name in ("Hot drinks", "Breakfast"):
        m["PathItemTag"].objects.create(item=tea, tag=m["PathTag"].objects.create(name=name))
    adapter = adapter_for(m["PathItem"], category="tags__name", price=None, stock=None, active=None)

    [info] = adapter.products([tea.pk]).values()

    assert (info.category, info.every_category) == ("Breakfast", ("Breakfast", "Hot drinks"))
    assert adapter_for(m["PathItem"], category="brand__name", price=None, stock=None, active=None).products(
        [tea.pk]
    )[str(tea.pk)].category == ""  # no brand


def test_the_catalog_reads_every_product_in_order(store):
    item = store["PathItem"]
    made = [item.objects.create(title=f"Item {n}") for n in range(3)]
    adapter = adapter_for(item, category=None, price=None, stock=None, active="public")

    assert [p.title for p in adapter.catalog()] == [p.title for p in made]
