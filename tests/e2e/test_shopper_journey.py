"""A shopper's visit in a real browser, against the demo store served by the live server.

A tiny store with purchase histories and trained models (tests/personalization/stores.py), and a
coupon issued to the shopper: they log in, see their recommendations with reasons on the home page,
put a product in the cart, see the cart's predictions and their coupon, follow a recommendation,
and check out with the coupon. Nothing the browser asks for may leave 127.0.0.1.
"""
import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.cache import cache

from personalization import registry
from personalization.models import Coupon, Event, EventKind
from shop.models import Order
from shop.templatetags.catalog import money
from tests.factories import PASSWORD
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory
from tests.personalization.stores import build_store, train_and_activate

default_placements = importlib.import_module("personalization.migrations.0003_placements")


@pytest.fixture
def store(transactional_db, live_server, settings, tmp_path):
    """The tiny store, its trained models made active, and shopper "dairy0" with a password and a coupon.

    The live server's database is emptied after each test, data migrations' rows included, so the
    default placements are put back first."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    registry.forget_loaded()
    default_placements.create_default_placements(apps, None)
    store = build_store()
    train_and_activate()
    store.shopper = store.shoppers["dairy"][0]
    store.shopper.set_password(PASSWORD)
    store.shopper.save()
    campaign = CouponCampaignFactory(name="Dairy lovers", discount_value=Decimal(10))
    store.coupon = CouponFactory(user=store.shopper, campaign=campaign)
    yield store
    cache.clear()
    registry.forget_loaded()


def shown_items(page, slug):
    """(recommendation id, [(product id, reason, explanation, title)]) of the placement on the page."""
    section = page.locator(f'section[data-placement="{slug}"]')
    assert section.count() == 1, f"the page shows no {slug!r} placement"
    items = [
        (
            item.get_attribute("data-product-id"),
            item.get_attribute("data-reason"),
            # the plugin's partial says why in .personalization-why; the demo store's override in p.muted
            item.locator(":is(.personalization-why, p.muted)").first.inner_text().strip(),
            item.locator(":scope > a, .card-title a").first.inner_text().strip(),
        )
        for item in section.locator("li.personalization-item").all()
    ]
    return section.get_attribute("data-recommendation-id"), items


def test_a_shopper_follows_a_recommendation_and_checks_out_with_their_coupon(store, live_server, page, artifacts):
    from playwright.sync_api import expect  # here: the `page` fixture skips the test when playwright is missing

    shopper, coupon = store.shopper, store.coupon

    # Log in through the store's login page.
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill(shopper.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + "/")
    assert page.get_by_role("button", name="Log out").is_visible()

    # The home page: the shopper's own recommendations, each with its reason.
    for slug in ("home-for-you", "home-buy-again"):
        recommendation_id, items = shown_items(page, slug)
        assert recommendation_id and items, f"{slug}: nothing recommended"
        assert all(reason and explanation and title for _, reason, explanation, title in items), items
    _, buy_again = shown_items(page, "home-buy-again")
    assert {title for *_, title in buy_again[:2]} == {"Milk", "Butter"}  # what a dairy shopper always buys
    assert "You have bought this 5 times" in page.locator('section[data-placement="home-buy-again"]').inner_text()

    # Put a product from a shelf in the cart.
    shelves = page.locator("section.shelf:not(.personalization-recommendations)")
    butter = shelves.locator("article.card", has=page.get_by_role("link", name="Butter", exact=True))
    with page.expect_navigation(url=live_server.url + "/"):  # back to the same address
        butter.get_by_role("button", name="Add").click()
    expect(page.locator(".messages")).to_contain_text("Added 1 × “Butter” to your cart.")
    expect(page.locator("a.cart-link .badge")).to_have_text("1")

    # The cart: what goes with it, and the shopper's coupon.
    page.locator("a.cart-link").click()
    page.wait_for_url(live_server.url + "/cart/")
    assert page.locator("table.lines tbody tr").count() == 1
    recommendation_id, predicted = shown_items(page, "cart-completion")
    assert recommendation_id and predicted, "the cart shows no cart predictions"
    assert all(reason and explanation for _, reason, explanation, _ in predicted), predicted
    assert str(store.product("Butter").pk) not in [product_id for product_id, *_ in predicted]
    banner = page.locator("aside.personalized-coupon")
    assert banner.locator("code.coupon-code").inner_text() == coupon.code
    assert "10% off" in banner.inner_text()
    page.screenshot(path=str(artifacts / "cart.png"), full_page=True)

    # Follow the first prediction: the tracked link leads to the product's page and records the click.
    product_id, _, _, title = predicted[0]
    product = next(p for p in store.products.values() if str(p.pk) == product_id)
    link = page.locator(f'section[data-placement="cart-completion"] li[data-product-id="{product_id}"] a').first
    assert link.get_attribute("href").startswith("/personalization/r/")
    link.click()
    page.wait_for_url(live_server.url + product.get_absolute_url())
    assert page.locator("h1").inner_text() == title == product.title
    click = Event.objects.get(kind=EventKind.CLICK)
    assert (click.user_id, click.product_id, click.recommendation_id) == (str(shopper.pk), product_id, recommendation_id)
    assert click.data["placement"] == "cart-completion"

    # Add it, then check out, entering the coupon by hand.
    with page.expect_navigation(url=live_server.url + product.get_absolute_url()):
        page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("a.cart-link .badge")).to_have_text("2")
    page.locator("a.cart-link").click()
    page.get_by_role("link", name="Check out").click()
    page.wait_for_url(live_server.url + "/checkout/")
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address").fill("1 Main Street\nSpringfield")
    page.get_by_label("Coupon code").fill(coupon.code.lower())  # as a shopper might type it
    with page.expect_navigation(url=live_server.url + "/checkout/"):
        page.get_by_role("button", name="Apply").click()
    expected = Decimal("0.60")  # 10% of two products at 3.00
    expect(page.locator(".coupon-applied")).to_have_text(f"Coupon applied: {money(expected)} off.")
    expect(page.get_by_label("Full name")).to_have_value("Ada Lovelace")  # kept while the coupon was checked
    page.get_by_role("button", name="Place order").click()

    # The confirmation shows the discount; the coupon is used up, on this order.
    page.wait_for_url(f"{live_server.url}/orders/*/confirmation/")
    assert "Thank you for your order!" in page.locator("h1").inner_text()
    discount_row = page.locator("tr.discount").inner_text()
    assert coupon.code in discount_row and f"−{money(expected)}" in discount_row
    _, for_next_time = shown_items(page, "order-confirmation")
    assert for_next_time, "the confirmation shows no recommendations"
    order = Order.objects.get(user=shopper)
    assert page.url == f"{live_server.url}/orders/{order.pk}/confirmation/"
    assert (order.coupon_code, order.discount, order.total) == (coupon.code, expected, Decimal("5.40"))
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_id, coupon.discount) == (Coupon.Status.REDEEMED, str(order.pk), expected)
    bought = Event.objects.filter(kind=EventKind.PURCHASE, order_id=str(order.pk))
    assert sorted(bought.values_list("product_id", flat=True)) == sorted([str(store.product("Butter").pk), product_id])

    assert page.offline.blocked == [], "the pages asked for something beyond this machine"
    assert page.offline.failures == [], "the journey met error responses"
    assert page.script_errors == []
