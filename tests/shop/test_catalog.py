"""Browsing the store: home, categories, product pages, search and the drawn product images."""
from xml.etree import ElementTree

import pytest
from django.urls import reverse

from tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_home_shows_active_products_grouped_by_category(client):
    fruit = CategoryFactory(name="Fruit")
    ProductFactory(title="Apple", category=fruit)
    ProductFactory(title="Hidden pear", category=fruit, active=False)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    shelves = dict(response.context["shelves"])
    assert [p.title for p in shelves[fruit]] == ["Apple"]
    assert "Corner Market" in response.text


def test_home_features_at_most_four_products_per_category(client):
    fruit = CategoryFactory(name="Fruit")
    ProductFactory.create_batch(6, category=fruit)

    response = client.get(reverse("home"))

    assert len(dict(response.context["shelves"])[fruit]) == 4


def test_home_shows_the_best_selling_categories_only(client, django_user_model):
    from decimal import Decimal

    from shop.models import Order, OrderLine
    from shop.views import HOME_SHELVES

    products = [ProductFactory(category=CategoryFactory(name=f"Aisle {n:02d}")) for n in range(HOME_SHELVES + 3)]
    best = products[-1]  # the last by name: shown first only because it sells
    order = Order.objects.create(user=django_user_model.objects.create_user("buyer"), total=Decimal("9.00"))
    OrderLine.objects.create(order=order, product=best, title=best.title, quantity=3, unit_price=Decimal("3.00"))

    shelves = [category for category, _ in client.get(reverse("home")).context["shelves"]]

    assert len(shelves) == HOME_SHELVES and shelves[0] == best.category
    assert shelves[1:] == sorted(shelves[1:], key=lambda category: category.name)


def test_category_page_lists_only_that_categorys_products(client):
    fruit, bread = CategoryFactory(name="Fruit"), CategoryFactory(name="Bread")
    ProductFactory(title="Apple", category=fruit)
    ProductFactory(title="Baguette", category=bread)

    response = client.get(fruit.get_absolute_url())

    assert [p.title for p in response.context["products"]] == ["Apple"]


def test_product_page_shows_price_stock_and_an_add_to_cart_form(client):
    product = ProductFactory(title="Apple", price="1234.50", stock=7)

    response = client.get(product.get_absolute_url())

    assert response.status_code == 200
    assert "$1,234.50" in response.text
    assert "7 in stock" in response.text
    assert reverse("cart_add", args=[product.pk]) in response.text


def test_product_page_of_a_product_without_stock_says_out_of_stock_and_offers_no_form(client):
    product = ProductFactory(stock=0)

    response = client.get(product.get_absolute_url())

    assert "Out of stock" in response.text
    assert reverse("cart_add", args=[product.pk]) not in response.text


def test_inactive_product_page_is_not_found(client):
    product = ProductFactory(active=False)

    assert client.get(product.get_absolute_url()).status_code == 404


def test_search_finds_active_products_by_title_or_description(client):
    ProductFactory(title="Sourdough loaf")
    ProductFactory(title="Rye", description="Dark sourdough bread")
    ProductFactory(title="Old sourdough", active=False)
    ProductFactory(title="Apple")

    response = client.get(reverse("search"), {"q": "sourdough"})

    assert sorted(p.title for p in response.context["products"]) == ["Rye", "Sourdough loaf"]


def test_search_without_a_query_lists_nothing(client):
    ProductFactory()

    response = client.get(reverse("search"))

    assert list(response.context["products"]) == []


def test_product_image_is_an_svg_drawn_in_the_category_colour_with_caching_headers(client):
    product = ProductFactory(title="Green apple", category=CategoryFactory(colour="#aa3300"))

    response = client.get(reverse("product_image", args=[product.slug]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
    assert b"#aa3300" in response.content
    assert b">GA<" in response.content
    assert "max-age=86400" in response["Cache-Control"]
    assert response["ETag"]


def test_product_image_answers_not_modified_to_a_matching_etag(client):
    url = reverse("product_image", args=[ProductFactory().slug])
    etag = client.get(url)["ETag"]

    response = client.get(url, headers={"if-none-match": etag})

    assert response.status_code == 304


def test_product_image_escapes_the_title_and_ignores_a_colour_that_is_not_hex(client):
    product = ProductFactory(title="<script>alert(1)</script>", category=CategoryFactory(colour='"/><x'))

    response = client.get(reverse("product_image", args=[product.slug]))

    assert ElementTree.fromstring(response.content).tag == "{http://www.w3.org/2000/svg}svg"
    assert b"<script>" not in response.content
    assert b'"/><x' not in response.content
