"""The storefront's layout in a real browser, on a 1280 px desktop and on a 390 px phone.

The store: the tiny store with purchase histories (tests/personalization/stores.py), so that the
home page and the cart show recommendations, and the demo catalog's 18 categories with some of its
products (shop/management/commands/seed_catalog.py), so that the category bar is as long as the
demo's. Columns are measured from the cards' boxes: the distinct `left` positions of the cards in a
grid's first row. Screenshots go to the `artifacts` folder ($E2E_ARTIFACTS, else the test's tmp_path).
"""
import importlib
import random
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.cache import cache

from personalization import registry
from personalization.models import CouponCampaign
from shop.management.commands.seed_catalog import seed_categories, seed_products
from shop.templatetags.catalog import money
from tests.e2e.conftest import Offline
from tests.factories import PASSWORD
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory
from tests.personalization.stores import build_store

default_placements = importlib.import_module("personalization.migrations.0003_placements")

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: Product columns expected: four on a desktop (the 1120 px column fits four 210 px cards), two on a phone.
COLUMNS = {"desktop": 4, "phone": 2}
MAX_MAIN = 1120  # .wrap's max-width in shop.css


@pytest.fixture
def store(transactional_db, live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    registry.forget_loaded()
    default_placements.create_default_placements(apps, None)
    store = build_store()
    seed_products(seed_categories(), 60, random.Random(7))  # the demo's categories, "Personal Care" and all
    store.shopper = store.shoppers["dairy"][0]
    store.shopper.set_password(PASSWORD)
    store.shopper.save()
    campaign = CouponCampaignFactory(
        name="Five off",
        discount_kind=CouponCampaign.DiscountKind.FIXED,
        discount_value=Decimal(5),
        min_cart_total=Decimal(2),
    )
    store.coupon = CouponFactory(user=store.shopper, campaign=campaign)
    yield store
    cache.clear()
    registry.forget_loaded()


def open_page(browser, viewport):
    """A page in a fresh context of the given size (a phone is a touch device with overlay scrollbars)."""
    phone = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, locale="en-US", is_mobile=phone, has_touch=phone)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.offline = Offline()
    page.route("**/*", page.offline.route)
    page.on("response", page.offline.response)
    return context, page


def set_language(page, live_server, language):
    page.context.add_cookies(
        [{"name": django_settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )


def columns(page, grid_selector):
    """[columns of each grid matched]: distinct left edges of the cards in the grid's first row."""
    return page.eval_on_selector_all(
        grid_selector,
        """grids => grids.map(grid => {
            const boxes = [...grid.children].map(child => child.getBoundingClientRect()).filter(box => box.width > 0);
            if (!boxes.length) return 0;
            const top = Math.min(...boxes.map(box => box.top));
            const first = boxes.filter(box => Math.abs(box.top - top) < 2);
            return new Set(first.map(box => Math.round(box.left))).size;
        })""",
    )


def card_counts(page, grid_selector):
    return page.eval_on_selector_all(grid_selector, "grids => grids.map(grid => grid.children.length)")


def assert_main_spans_the_viewport(page):
    """main.wrap is as wide as the viewport (up to .wrap's max-width), less its padding, and nothing scrolls sideways."""
    sizes = page.evaluate(
        """() => {
            const main = document.querySelector('main.wrap'), style = getComputedStyle(main);
            return {
                viewport: document.documentElement.clientWidth,
                page: document.documentElement.scrollWidth,
                main: main.getBoundingClientRect().width,
                content: main.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
                padding: parseFloat(style.paddingLeft) + parseFloat(style.paddingRight),
            };
        }"""
    )
    expected = min(sizes["viewport"], MAX_MAIN)
    assert abs(sizes["main"] - expected) <= 1, sizes
    assert abs(sizes["content"] - (expected - sizes["padding"])) <= 1, sizes
    assert sizes["page"] <= sizes["viewport"], f"the page scrolls sideways: {sizes}"


def assert_grids_have_columns(page, selector, expected, where):
    counts, found = card_counts(page, selector), columns(page, selector)
    assert found, f"{where}: no {selector}"
    for cards, measured in zip(counts, found):
        assert measured == min(cards, expected), f"{where}: {measured} columns for {cards} cards, want {expected}: {found}"
    assert any(cards >= expected for cards in counts), f"{where}: no grid has {expected} cards to fill a row: {counts}"


def category_bar(page):
    return page.evaluate(
        """() => {
            const bar = document.querySelector('nav.categories ul'), style = getComputedStyle(bar);
            const box = bar.getBoundingClientRect();
            const links = [...bar.querySelectorAll('a')].map(a => a.getBoundingClientRect());
            return {
                overflowX: style.overflowX,
                wraps: style.flexWrap === 'wrap',
                scrollWidth: bar.scrollWidth,
                clientWidth: bar.clientWidth,
                rows: new Set(links.map(link => Math.round(link.top))).size,
                allInside: links.every(link => link.left >= box.left - 1 && link.right <= box.right + 1),
                background: style.backgroundImage,
                attachment: style.backgroundAttachment,
                fade: getComputedStyle(bar.parentElement, '::after').backgroundImage,
                fadeWidth: parseFloat(getComputedStyle(bar.parentElement, '::after').width) || 0,
                links: links.length,
            };
        }"""
    )


def assert_category_bar_wraps_or_scrolls(page, viewport_name, artifacts):
    bar = category_bar(page)
    assert bar["links"] >= 18, bar
    if bar["scrollWidth"] <= bar["clientWidth"] + 1:
        # Wrapping: every category is on screen, on as many rows as needed.
        assert bar["allInside"], bar
        assert bar["wraps"] or bar["rows"] == 1, bar
    else:
        # Scrolling: the row scrolls; its right end fades out (the bar's ::after) and, once scrolled,
        # a shadow at its left edge (a scroll-attached gradient under a local cover) tells that more lies back.
        assert bar["overflowX"] in ("auto", "scroll"), bar
        assert "linear-gradient" in bar["fade"] and bar["fadeWidth"] >= 16, bar
        assert "radial-gradient" in bar["background"] and "local" in bar["attachment"], bar
        # The last category can be scrolled to.
        last = page.locator("nav.categories a").last
        last.scroll_into_view_if_needed()
        box, bar_box = last.bounding_box(), page.locator("nav.categories ul").bounding_box()
        assert box["x"] >= bar_box["x"] - 1 and box["x"] + box["width"] <= bar_box["x"] + bar_box["width"] + 1
        page.screenshot(path=str(artifacts / f"category-bar-scrolled-{viewport_name}.png"), clip={"x": 0, "y": 0, "width": page.viewport_size["width"], "height": 260})
        page.evaluate("document.querySelector('nav.categories ul').scrollLeft = 0")
    if viewport_name == "desktop":
        assert bar["scrollWidth"] <= bar["clientWidth"] + 1 and bar["allInside"], f"the desktop bar cuts categories off: {bar}"
    return bar


@pytest.mark.parametrize("viewport_name, viewport", [("desktop", DESKTOP), ("phone", PHONE)])
def test_storefront_columns_and_category_bar(store, live_server, browser, artifacts, viewport_name, viewport):
    context, page = open_page(browser, viewport)
    expected = COLUMNS[viewport_name]
    try:
        # Home: the recommendation strips and the category shelves.
        page.goto(live_server.url + "/")
        assert_main_spans_the_viewport(page)
        assert_grids_have_columns(page, "section.shelf:not(.personalization-recommendations) .grid", expected, "home shelves")
        assert_grids_have_columns(page, "section.personalization-recommendations .grid", expected, "home recommendations")
        bar = assert_category_bar_wraps_or_scrolls(page, viewport_name, artifacts)
        if viewport_name == "phone":
            assert bar["rows"] == 1 and bar["scrollWidth"] > bar["clientWidth"], bar  # one row that scrolls
        page.screenshot(path=str(artifacts / f"home-{viewport_name}.png"), full_page=True)
        page.screenshot(path=str(artifacts / f"home-{viewport_name}-top.png"))

        # Every recommendation card has an Add button, and it puts the product in the cart.
        cards = page.locator("section.personalization-recommendations li.personalization-item")
        assert cards.count() > 0
        for card in cards.all():
            assert card.get_by_role("button", name="Add", exact=True).count() == 1, card.inner_text()
        first = cards.first
        title = first.locator(".card-title a").inner_text().strip()
        with page.expect_navigation(url=live_server.url + "/"):
            first.get_by_role("button", name="Add", exact=True).click()
        assert f"“{title}”" in page.locator(".messages").inner_text()
        assert page.locator("a.cart-link .badge").inner_text().strip() == "1"

        # A category page with more products than one row holds.
        page.goto(live_server.url + "/categories/dairy/")
        assert_main_spans_the_viewport(page)
        assert_grids_have_columns(page, "main > .grid", expected, "category page")
        assert_category_bar_wraps_or_scrolls(page, viewport_name, artifacts)
        page.screenshot(path=str(artifacts / f"category-{viewport_name}.png"), full_page=True)

        # The cart, with one line and its predictions; then the empty cart.
        page.goto(live_server.url + "/cart/")
        assert_main_spans_the_viewport(page)
        if card_counts(page, "section.personalization-recommendations .grid"):
            for cards_in_grid, measured in zip(card_counts(page, "section.personalization-recommendations .grid"), columns(page, "section.personalization-recommendations .grid")):
                assert measured == min(cards_in_grid, expected)
        page.screenshot(path=str(artifacts / f"cart-{viewport_name}.png"), full_page=True)
        page.get_by_role("button", name="Remove").click()
        page.wait_for_url(live_server.url + "/cart/")
        assert "Your cart is empty." in page.locator("main").inner_text()
        assert_main_spans_the_viewport(page)
        page.screenshot(path=str(artifacts / f"cart-empty-{viewport_name}.png"), full_page=True)

        assert page.offline.blocked == [] and page.offline.failures == [], (page.offline.blocked, page.offline.failures)
    finally:
        context.close()


def test_chinese_home_has_four_columns_on_a_desktop(store, live_server, browser, artifacts):
    context, page = open_page(browser, DESKTOP)
    try:
        set_language(page, live_server, "zh-hans")
        page.goto(live_server.url + "/categories/dairy/")
        assert page.locator("html").get_attribute("lang") == "zh-hans"
        assert_main_spans_the_viewport(page)
        assert_grids_have_columns(page, "main > .grid", 4, "Chinese category page")
        page.goto(live_server.url + "/")
        assert_main_spans_the_viewport(page)
        assert_grids_have_columns(page, "section.shelf:not(.personalization-recommendations) .grid", 4, "Chinese home")
        assert_category_bar_wraps_or_scrolls(page, "desktop", artifacts)
        page.screenshot(path=str(artifacts / "home-desktop-zh.png"))
    finally:
        context.close()


def test_favicon_privacy_button_coupon_currency_and_an_empty_coupon(store, live_server, browser, artifacts):
    context, page = open_page(browser, DESKTOP)
    try:
        # The favicon is linked and served.
        page.goto(live_server.url + "/")
        icon = page.locator('link[rel="icon"]').get_attribute("href")
        answer = page.request.get(live_server.url + icon)
        assert answer.ok and answer.headers["content-type"].startswith("image/svg"), (icon, answer.status)

        # Log in; the privacy page's erase button is not styled as the main action.
        page.goto(live_server.url + "/accounts/login/")
        page.get_by_label("Username").fill(store.shopper.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.locator("main").get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + "/")
        page.goto(live_server.url + "/personalization/privacy/")
        erase = page.get_by_role("button", name="Turn personalization off and erase my data")
        primary = page.locator("header .search button")  # the store's filled brand-coloured button
        erase_style = erase.evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color, getComputedStyle(b).borderTopStyle]")
        primary_background = primary.evaluate("b => getComputedStyle(b).backgroundColor")
        assert erase_style[0] != primary_background and erase_style[0] in ("rgba(0, 0, 0, 0)", "transparent"), erase_style
        assert erase_style[2] == "solid", erase_style  # an outlined button
        page.screenshot(path=str(artifacts / "privacy-desktop.png"))

        # The cart's coupon banner names the currency of its amounts.
        page.goto(live_server.url + store.product("Milk").get_absolute_url())
        page.get_by_role("button", name="Add to cart").click()
        page.goto(live_server.url + "/cart/")
        banner = page.locator("aside.personalized-coupon").inner_text()
        assert f"{money(Decimal(5))} off" in banner, banner
        assert f"On carts worth {money(Decimal(2))} or more." in banner, banner
        assert f"saves you {money(Decimal(3))} on this cart" in banner, banner  # at most the cart's 3.00
        page.screenshot(path=str(artifacts / "cart-coupon-desktop.png"), full_page=True)

        # "Apply" with an empty coupon field says so, and keeps the delivery details typed.
        page.get_by_role("link", name="Check out").click()
        page.wait_for_url(live_server.url + "/checkout/")
        page.get_by_label("Full name").fill("Ada Lovelace")
        page.get_by_label("Coupon code").fill("")
        with page.expect_navigation(url=live_server.url + "/checkout/"):
            page.get_by_role("button", name="Apply").click()
        assert page.locator(".coupon .errorlist").inner_text().strip() == "Please type a coupon code, then press Apply."
        assert page.get_by_label("Full name").input_value() == "Ada Lovelace"
        page.screenshot(path=str(artifacts / "checkout-empty-coupon.png"), full_page=True)
        # A typed code that applies: no such message.
        page.get_by_label("Coupon code").fill(store.coupon.code)
        with page.expect_navigation(url=live_server.url + "/checkout/"):
            page.get_by_role("button", name="Apply").click()
        assert page.locator(".coupon-applied").is_visible()
        assert page.locator(".coupon .errorlist").count() == 0

        assert page.offline.blocked == [] and page.offline.failures == [], (page.offline.blocked, page.offline.failures)
    finally:
        context.close()
