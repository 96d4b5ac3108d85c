"""The template tags on the demo store's pages: blocks, impressions, tracked clicks and attribution."""
import re

import pytest
from django.template import Context, Template
from django.urls import reverse

from personalization import registry
from personalization.capture import attribution
from personalization.models import Event, EventKind
from shop.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    registry.forget_loaded()
    yield
    registry.forget_loaded()


@pytest.fixture
def visit(client, django_capture_on_commit_callbacks):
    """Sends a request through the whole stack; the events it records are written, as after a commit."""

    def visit(method, url, data=None):
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method)(url, data or {})

    return visit


def section(html, slug):
    """(recommendation id, [product ids]) of the placement `slug` on a page; None when absent."""
    found = re.search(rf'<section [^>]*data-placement="{slug}" data-recommendation-id="(\w+)".*?</section>', html, re.S)
    if found is None:
        return None
    return found.group(1), re.findall(r'data-product-id="(\d+)"', found.group(0))


def click_urls(html, slug):
    body = re.search(rf'data-placement="{slug}".*?</section>', html, re.S).group(0)
    return list(dict.fromkeys(re.findall(r'href="(/personalization/r/[^"]+/)"', body)))


def test_the_home_page_shows_for_you_and_buy_again_with_reasons(trained, client):
    client.force_login(trained.shoppers["dairy"][0])

    html = client.get(reverse("home")).content.decode()

    _, for_you = section(html, "home-for-you")
    _, buy_again = section(html, "home-buy-again")
    assert for_you and buy_again
    assert "You have bought this 5 times" in html
    assert "Picked for you" in html  # their discoveries (bakery, fruit) relate to nothing they buy


def test_different_shoppers_see_different_products_on_the_home_page(trained, client):
    client.force_login(trained.shoppers["dairy"][0])
    dairy = section(client.get(reverse("home")).content.decode(), "home-buy-again")[1]
    client.force_login(trained.shoppers["bakery"][0])
    bakery = section(client.get(reverse("home")).content.decode(), "home-buy-again")[1]

    assert set(dairy[:2]) == set(trained.ids("Milk", "Butter"))
    assert set(bakery[:2]) == set(trained.ids("Bread", "Croissant"))


def test_the_product_page_shows_bought_together_and_similar_products_without_repeating_one(trained, client):
    milk = trained.product("Milk")

    html = client.get(milk.get_absolute_url()).content.decode()

    _, together = section(html, "product-bought-together")
    _, similar = section(html, "product-similar")
    assert together[0] == str(trained.product("Butter").pk)
    assert "Often bought with Milk" in html
    assert similar and str(milk.pk) not in together + similar
    assert not set(together) & set(similar)
    assert f'{trained.product("Butter").get_absolute_url()}image.svg' in html


def test_a_product_just_added_to_the_cart_leaves_the_cart_predictions(trained, visit):
    visit("post", reverse("cart_add", args=[trained.product("Bread").pk]), {"quantity": 1})
    _, predicted = section(visit("get", reverse("cart")).content.decode(), "cart-completion")
    assert predicted

    visit("post", reverse("cart_add", args=[predicted[0]]), {"quantity": 1})
    _, again = section(visit("get", reverse("cart")).content.decode(), "cart-completion")

    assert predicted[0] not in again
    assert str(trained.product("Bread").pk) not in again


def test_the_order_confirmation_shows_a_placement(trained, client, visit):
    client.force_login(trained.shoppers["bakery"][0])
    visit("post", reverse("cart_add", args=[trained.product("Bread").pk]), {"quantity": 1})
    visit("post", reverse("checkout"), {"full_name": "Ada", "address": "1 Main St"})

    html = visit("get", reverse("order_confirmation", args=[Order.objects.get().pk])).content.decode()

    _, shown = section(html, "order-confirmation")
    assert shown and str(trained.product("Bread").pk) not in shown


def test_each_shown_product_records_an_impression_with_the_recommendation_id(trained, client, visit):
    client.force_login(trained.shoppers["dairy"][0])

    recommendation_id, shown = section(visit("get", reverse("home")).content.decode(), "home-for-you")

    impressions = Event.objects.filter(kind=EventKind.IMPRESSION, recommendation_id=recommendation_id)
    assert sorted(impressions.values_list("product_id", flat=True)) == sorted(shown)
    assert {event.data["placement"] for event in impressions} == {"home-for-you"}


def test_a_tracked_click_records_the_click_and_redirects_to_the_product(trained, visit):
    html = visit("get", trained.product("Milk").get_absolute_url()).content.decode()
    recommendation_id, shown = section(html, "product-bought-together")

    response = visit("get", click_urls(html, "product-bought-together")[0])

    product = next(p for p in trained.products.values() if str(p.pk) == shown[0])
    assert response.status_code == 302
    assert response["Location"] == product.get_absolute_url()
    click = Event.objects.get(kind=EventKind.CLICK)
    assert (click.product_id, click.recommendation_id) == (shown[0], recommendation_id)


def test_a_click_link_cannot_be_forged_or_pointed_elsewhere(trained, visit):
    milk = trained.product("Milk")
    good = reverse("personalization:click", args=[attribution.click_token("a" * 32, milk.pk, "home-for-you")])
    forged = good.replace(good.split("/")[-2], good.split("/")[-2][:-3] + "abc")
    unknown = reverse("personalization:click", args=[attribution.click_token("a" * 32, "999999", "home-for-you")])

    assert visit("get", forged).status_code == 404
    assert visit("get", unknown).status_code == 404
    assert visit("get", good + "?next=https://evil.example/")["Location"] == milk.get_absolute_url()
    assert Event.objects.filter(kind=EventKind.CLICK).count() == 1


def test_a_replayed_click_link_counts_once_and_an_old_one_not_at_all(trained, visit, monkeypatch):
    milk = trained.product("Milk")
    link = reverse("personalization:click", args=[attribution.click_token("b" * 32, milk.pk, "home-for-you")])

    answers = [visit("get", link) for _ in range(5)]
    monkeypatch.setattr(attribution, "CLICK_LINK_SECONDS", -1)  # every link is old now
    old = visit("get", link)

    assert {a["Location"] for a in [*answers, old]} == {milk.get_absolute_url()}  # each still leads to the product
    assert Event.objects.filter(kind=EventKind.CLICK).count() == 1


def test_a_cart_addition_and_purchase_after_a_click_carry_its_recommendation_id(trained, visit):
    html = visit("get", trained.product("Milk").get_absolute_url()).content.decode()
    recommendation_id, shown = section(html, "product-bought-together")
    visit("get", click_urls(html, "product-bought-together")[0])
    visit("post", reverse("cart_add", args=[shown[0]]), {"quantity": 2})
    visit("post", reverse("cart_add", args=[trained.product("Plums").pk]), {"quantity": 1})

    shopper = trained.shoppers["bakery"][1]
    shopper.set_password("a-long-pass-phrase")
    shopper.save()
    visit("post", reverse("login"), {"username": shopper.username, "password": "a-long-pass-phrase"})
    visit("post", reverse("checkout"), {"full_name": "Ada", "address": "1 Main St"})

    added = dict(Event.objects.filter(kind=EventKind.CART_ADD).values_list("product_id", "recommendation_id"))
    bought = dict(Event.objects.filter(kind=EventKind.PURCHASE, order_id=str(Order.objects.get().pk)).values_list("product_id", "recommendation_id"))
    assert added == {shown[0]: recommendation_id, str(trained.product("Plums").pk): ""}
    assert bought == added


def test_a_failing_tag_renders_nothing_and_the_page_goes_on(rf, caplog):
    request = rf.get("/")
    template = Template("{% load personalization %}before{% recommendations 'no-such-placement' %}{% cart_predictions cart=7 %}after")

    assert template.render(Context({"request": request})) == "beforeafter"
    assert "There is no placement 'no-such-placement'" in caplog.text
    assert "{% cart_predictions %} failed" in caplog.text


def test_a_click_token_signed_compressed_still_reads():
    """Tokens were signed compressed before; a link shown then still records its click."""
    from django.core import signing

    token = signing.dumps(["r" * 32, "7" * 40, "home-for-you"], salt=attribution._SALT, compress=True)

    assert token.startswith(".")  # zlib shortened this one
    assert attribution.read_click_token(token) == attribution.Click("r" * 32, "7" * 40, "home-for-you")


def test_click_tokens_are_what_django_signs_and_follow_the_secret_key(settings, monkeypatch):
    from django.core import signing

    monkeypatch.setattr(signing.time, "time", lambda: 1_800_000_000)  # one timestamp for both
    token = attribution.click_token("r" * 32, 7, "home-for-you")

    assert token == signing.dumps(["r" * 32, "7", "home-for-you"], salt=attribution._SALT)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert attribution.click_token("r" * 32, 7, "home-for-you") != token
    with pytest.raises(signing.BadSignature):
        attribution.read_click_token(token)
