"""seed_catalog: the demo store's grocery catalog."""
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from shop.models import Category, Order, OrderLine, Product
from tests.factories import UserFactory


def seed(*args):
    out = io.StringIO()
    call_command("seed_catalog", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_catalog_creates_grocery_categories_with_colours_and_products():
    output = seed("--products", "300")

    assert 15 <= Category.objects.count() <= 20
    assert {"Fruit", "Dairy", "Pasta & Rice", "Sauces", "Coffee & Tea", "Household"} <= set(
        Category.objects.values_list("name", flat=True)
    )
    colours = Category.objects.values_list("colour", flat=True)
    assert all(colour.startswith("#") and len(colour) == 7 for colour in colours)
    assert Product.objects.count() == 300
    assert "Created 18 categories and 300 products" in output


@pytest.mark.django_db
def test_seeded_products_are_sellable_with_a_few_out_of_stock():
    seed("--products", "500")
    products = Product.objects.all()

    assert len({product.slug for product in products}) == 500
    assert all(product.active and product.price > 0 and product.description for product in products)
    out_of_stock = products.filter(stock=0).count()
    assert 0 < out_of_stock < 100
    assert products.filter(category__name="Fruit").count() > 0


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_catalog():
    seed("--products", "50", "--seed", "3")
    first = list(Product.objects.order_by("pk").values_list("title", "price", "stock"))

    seed("--products", "50", "--seed", "3", "--replace")

    assert list(Product.objects.order_by("pk").values_list("title", "price", "stock")) == first


@pytest.mark.django_db
def test_seeding_again_leaves_an_existing_catalog_alone():
    seed("--products", "20")

    output = seed("--products", "40")

    assert Product.objects.count() == 20
    assert "already has 20 products" in output


@pytest.mark.django_db
def test_replace_rebuilds_the_catalog():
    seed("--products", "20")

    seed("--products", "30", "--replace")

    assert Product.objects.count() == 30


@pytest.mark.django_db
def test_replace_refuses_while_orders_refer_to_products():
    seed("--products", "5")
    shopper = UserFactory()
    product = Product.objects.first()
    order = Order.objects.create(user=shopper, full_name="Ada", address="1 Main St")
    OrderLine.objects.create(order=order, product=product, title=product.title, quantity=1, unit_price=product.price)

    with pytest.raises(CommandError, match="orders refer to its products"):
        seed("--products", "5", "--replace")

    assert Product.objects.count() == 5


@pytest.mark.django_db
def test_a_large_catalog_is_created_in_bulk(django_assert_max_num_queries):
    with django_assert_max_num_queries(200):
        seed("--products", "5000")

    assert Product.objects.count() == 5000


CATALOG_CSV = (
    "product_id,title,department,category,price\n"
    "25671,\"ICE - CRUSHED/CUBED (National, 22 LB)\",GROCERY,FRZN ICE,3.49\n"
    "26093,BREAD:ITALIAN/FRENCH (Private),PASTRY,BREAD,1.59\n"
    "26190,\"BREAD:ITALIAN/FRENCH (National) #26190\",PASTRY,BREAD,2.5\n"
)


@pytest.fixture
def catalog_file(tmp_path):
    def write(text):
        path = tmp_path / "catalog.csv"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.mark.django_db
def test_a_catalog_file_becomes_the_store_with_its_product_ids(catalog_file):
    output = seed("--from", str(catalog_file(CATALOG_CSV)))

    assert "Created 2 categories and 3 products" in output
    ice, bread, other_bread = Product.objects.order_by("pk")
    assert (ice.pk, ice.title) == (25671, "ICE - CRUSHED/CUBED (National, 22 LB)")
    assert (ice.category.name, ice.price) == ("FRZN ICE", Decimal("3.49"))
    assert ice.description == "ICE - CRUSHED/CUBED (National, 22 LB). Grocery: Frzn ice."
    assert ice.slug == "ice-crushedcubed-national-22-lb-25671"
    assert other_bread.slug == "breaditalianfrench-national-26190"
    assert bread.category == other_bread.category and bread.category.colour.startswith("#")
    assert other_bread.price == Decimal("2.50")
    assert all(product.active for product in (ice, bread, other_bread))


@pytest.mark.django_db
def test_a_product_added_after_a_catalog_file_gets_a_key_of_its_own(catalog_file):
    seed("--from", str(catalog_file(CATALOG_CSV)))

    added = Product.objects.create(title="Tea", slug="tea", category=Category.objects.first(), price=Decimal("1"))

    assert added.pk not in {25671, 26093, 26190}


@pytest.mark.django_db
def test_a_catalog_file_replaces_a_made_up_catalog(catalog_file):
    seed("--products", "20")

    seed("--from", str(catalog_file(CATALOG_CSV)), "--replace")

    assert set(Product.objects.values_list("pk", flat=True)) == {25671, 26093, 26190}
    assert set(Category.objects.values_list("name", flat=True)) == {"FRZN ICE", "BREAD"}


@pytest.mark.parametrize(
    "row, message",
    [
        ("abc,Tea,TEA,1.00", "line 5, column 'product_id': 'abc' is not a whole number of at least 1"),
        ("0,Tea,TEA,1.00", "line 5, column 'product_id': '0' is not a whole number of at least 1"),
        ("26093,Tea,TEA,1.00", "line 5, column 'product_id': '26093' is the product of line 3 already"),
        ("7,,TEA,1.00", "line 5, column 'title': a value is required"),
        ("7," + "T" * 201 + ",TEA,1.00", "line 5, column 'title': 'TTTT"),
        ("7,Tea,,1.00", "line 5, column 'category': a value is required"),
        ("7,Tea,TEA,1;50", "line 5, column 'price': '1;50' is not a number"),
        ("7,Tea,TEA,-1", "line 5, column 'price': '-1' is not between 0 and 100000000"),
        ("7,Tea,TEA", "line 5: expected 4 fields, saw 3"),
    ],
)
@pytest.mark.django_db
def test_a_bad_catalog_row_names_file_line_and_column_and_loads_nothing(catalog_file, row, message):
    text = CATALOG_CSV.replace("department,", "").replace("GROCERY,", "").replace("PASTRY,", "")
    path = catalog_file(text + row + "\n")

    with pytest.raises(CommandError) as error:
        seed("--from", str(path))

    assert str(error.value).startswith(f"{path}, {message}")
    assert not Product.objects.exists() and not Category.objects.exists()


@pytest.mark.django_db
def test_a_catalog_file_without_a_needed_column_is_refused_on_line_1(catalog_file):
    path = catalog_file("product_id,title,category\n1,Tea,TEA\n")

    with pytest.raises(CommandError) as error:
        seed("--from", str(path))

    assert str(error.value) == (
        f"{path}, line 1, column 'price': the header has no such column (it has: product_id, title, category)"
    )


@pytest.mark.django_db
def test_a_missing_catalog_file_is_named(tmp_path):
    with pytest.raises(CommandError, match="missing.csv: cannot be read"):
        seed("--from", str(tmp_path / "missing.csv"))


@pytest.mark.django_db
def test_a_catalog_file_that_is_not_utf8_is_refused_at_its_line_and_column(catalog_file):
    path = catalog_file(CATALOG_CSV)
    path.write_bytes(path.read_bytes() + "7,Café,GROCERY,TEA,1.00\n".encode("latin-1"))

    with pytest.raises(CommandError) as error:
        seed("--from", str(path))

    assert str(error.value) == f"{path}, line 5, column 'title': not UTF-8 text; save the file as UTF-8"
