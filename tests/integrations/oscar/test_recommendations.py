"""The plugin's placements on Oscar's pages and API: trained on the store's purchases, never showing
what Oscar would not sell (no stock left, not public)."""
import random
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from personalization.models import ModelVersion, Placement
from tests.integrations.oscar import store

pytestmark = pytest.mark.django_db

DAIRY = ["Milk", "Butter", "Cheese", "Yogurt", "Cream", "Kefir"]
BAKERY = ["Bread", "Croissant", "Bagel", "Muffin", "Baguette", "Rye"]


@pytest.fixture
def catalogue():
    """Dairy and bakery shelves, each with a product no one can buy: one whose stock is all allocated
    to orders, one taken off the shop (not public). Both were the best sellers."""
    products = {title: store.product(title=title, category="Groceries > Dairy") for title in DAIRY}
    products |= {title: store.product(title=title, category="Groceries > Bakery") for title in BAKERY}
    products["Sold out"] = store.product(
        title="Sold out", num_in_stock=5, num_allocated=5, category="Groceries > Dairy"
    )
    products["Hidden"] = store.product(title="Hidden", is_public=False, category="Groceries > Bakery")
    return products


@pytest.fixture
def shoppers(catalogue):
    """Dairy shoppers and bakery shoppers, five weekly orders each of their staples and two other
    products of their shelf, some still buying, some who stopped weeks ago; everyone bought the two
    products no one can buy now."""
    rng = random.Random(0)
    unbuyable = [catalogue["Sold out"], catalogue["Hidden"]]
    found = {}
    for taste, titles in {"dairy": DAIRY, "bakery": BAKERY}.items():
        found[taste] = [store.shopper() for _ in range(12)]
        for n, user in enumerate(found[taste]):
            baskets = [[catalogue[t] for t in titles[:2] + rng.sample(titles[2:], 2)] + unbuyable for _ in range(5)]
            store.past_orders(user, baskets, last_days_ago=1 + 10 * (n % 3))
    return found


@pytest.fixture
def trained(shoppers):
    call_command("personalization_train", model="all", device="cpu", verbosity=0)
    return shoppers


def shown_product_ids(html, placement=None):
    """The product ids the plugin's partials list in a page: of one placement's section, or of all."""
    sections = re.findall(r'data-placement="([^"]+)"(.*?)</section>', html, re.DOTALL)
    if placement is not None:
        assert placement in [slug for slug, _ in sections], f"no {placement!r} section in the page"
    return {
        product_id
        for slug, section in sections
        if placement in (None, slug)
        for product_id in re.findall(r'data-product-id="(\d+)"', section)
    }


def recommendations_api(client, slug, **params):
    response = client.get(reverse("personalization_api:recommendations"), {"placement": slug, **params})
    assert response.status_code == 200, response.content[:500]
    return response.json()


def unbuyable_ids(catalogue):
    return {str(catalogue["Sold out"].pk), str(catalogue["Hidden"].pk)}


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_the_api_never_recommends_products_without_stock_or_not_public(client, catalogue, shoppers, signed_in):
    if signed_in:
        client.force_login(shoppers["dairy"][0])
    answered = {}
    for placement in Placement.objects.all():
        params = {"product": catalogue["Milk"].pk} if placement.page == "product" else {}
        items = recommendations_api(client, placement.slug, **params)["items"]
        answered[placement.slug] = {item["product_id"] for item in items}

    assert any(answered.values()), "no placement recommended anything: the test proves nothing"
    unbuyable = unbuyable_ids(catalogue)
    assert {slug: ids & unbuyable for slug, ids in answered.items()} == {slug: set() for slug in answered}


def test_oscars_pages_never_show_products_without_stock_or_not_public(client, catalogue, trained):
    client.force_login(trained["dairy"][0])
    store.add_to_basket(client, catalogue["Milk"])

    pages = {
        "home": client.get(reverse("catalogue:index")),
        "product": client.get(catalogue["Butter"].get_absolute_url()),
        "basket": client.get(reverse("basket:summary")),
    }

    shown = {name: shown_product_ids(page.content.decode()) for name, page in pages.items()}
    assert all(page.status_code == 200 for page in pages.values())
    assert any(shown.values()), "no page showed a recommendation: the test proves nothing"
    assert {name: ids & unbuyable_ids(catalogue) for name, ids in shown.items()} == {name: set() for name in pages}


def test_after_training_oscars_product_and_basket_pages_show_the_plugins_placements(client, catalogue, trained):
    assert ModelVersion.objects.exists()
    client.force_login(trained["dairy"][0])
    store.add_to_basket(client, catalogue["Milk"])

    home = client.get(reverse("catalogue:index")).content.decode()
    product_page = client.get(catalogue["Milk"].get_absolute_url()).content.decode()
    basket_page = client.get(reverse("basket:summary")).content.decode()

    assert shown_product_ids(home, "home-for-you")
    assert shown_product_ids(product_page, "product-bought-together")
    assert shown_product_ids(product_page, "product-similar")
    assert str(catalogue["Milk"].pk) not in shown_product_ids(product_page)  # not the page's own product
    assert shown_product_ids(basket_page, "cart-completion")
    assert str(catalogue["Milk"].pk) not in shown_product_ids(basket_page, "cart-completion")  # in the basket


@pytest.mark.parametrize("auth", ["token", "session"])
def test_after_training_the_api_answers_a_signed_in_shopper(client, catalogue, trained, auth):
    user = trained["bakery"][0]
    if auth == "token":
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    else:
        client.force_login(user)

    answer = recommendations_api(client, "home-for-you")

    assert answer["placement"] == "home-for-you"
    titles = [item["title"] for item in answer["items"]]
    assert titles and set(titles) <= set(DAIRY + BAKERY)
    assert all(item["url"].startswith("http://testserver/") for item in answer["items"])


def test_a_product_whose_stock_record_sells_out_is_not_shown_again(client, catalogue, shoppers):
    client.force_login(shoppers["dairy"][0])
    shown = {item["product_id"] for item in recommendations_api(client, "home-for-you")["items"]}
    assert shown, "nothing recommended: the test proves nothing"
    product_id = sorted(shown)[0]

    record = catalogue_product(catalogue, product_id).stockrecords.get()
    record.num_allocated = record.num_in_stock
    record.save()  # Oscar allocates stock with save(): the plugin forgets what it remembered of the products

    after = {item["product_id"] for item in recommendations_api(client, "home-for-you")["items"]}
    assert product_id not in after


def catalogue_product(catalogue, product_id):
    return next(product for product in catalogue.values() if str(product.pk) == product_id)
