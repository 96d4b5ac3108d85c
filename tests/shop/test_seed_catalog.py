"""seed_catalog: the demo store's grocery catalog."""
import io

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
