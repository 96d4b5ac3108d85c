"""A promotion's whole path in a real browser: the shop owner makes it in the admin, a shopper sees
it in the demo home page's `home-banner` slot (on a 1280 px desktop and a 390 px phone), its button
leads to the product, and the dashboard then lists its impressions and the click.

Screenshots ($E2E_ARTIFACTS): promotion-admin-saved.png, home-promotion-desktop.png,
home-promotion-phone.png, dashboard-promotion.png.
"""
import importlib
import struct
import zlib

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.cache import cache

from personalization.dashboard import charts
from personalization.models import Event, EventKind, Promotion
from tests.e2e.conftest import Offline
from tests.factories import PASSWORD, CategoryFactory, ProductFactory, UserFactory

default_placements = importlib.import_module("personalization.migrations.0003_placements")

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
HEADLINE = "Apple week: crisp, local and picked this morning"


def png(width, height):
    """A real PNG file's bytes: a red-to-yellow gradient, like an apple's skin."""
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in (200 + 55 * x // width, 40 + 180 * y // height, 40)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def serve_media(page, root):
    """The live server runs with DEBUG off, so it serves no uploads (a web server would): the browser
    is answered from MEDIA_ROOT here instead."""
    def fulfil(route):
        path = root / route.request.url.split("/media/", 1)[1]
        if path.is_file():
            route.fulfill(status=200, body=path.read_bytes(), content_type="image/png")
        else:
            route.fulfill(status=404, body="")

    page.route("**/media/**", fulfil)


@pytest.fixture
def shop(transactional_db, live_server, settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()
    default_placements.create_default_placements(apps, None)
    charts.create_charts()
    fruit = CategoryFactory(name="Fruit")
    apple = ProductFactory(title="Crunchy apple", category=fruit)
    for n in range(7):
        ProductFactory(title=f"Fruit {n}", category=fruit)
    owner = get_user_model().objects.create_superuser("owner", "owner@example.com", PASSWORD)
    shoppers = [UserFactory(username=f"shopper{n}") for n in range(2)]
    for shopper in shoppers:
        shopper.set_password(PASSWORD)
        shopper.save()
    picture = tmp_path / "apples.png"
    picture.write_bytes(png(400, 300))
    yield {"apple": apple, "owner": owner, "shoppers": shoppers, "picture": picture, "media": settings.MEDIA_ROOT}
    cache.clear()


def open_page(browser, viewport):
    phone = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, locale="en-US", is_mobile=phone, has_touch=phone)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.offline = Offline()
    page.script_errors = []
    page.route("**/*", page.offline.route)
    page.on("response", page.offline.response)
    page.on("pageerror", lambda error: page.script_errors.append(str(error)))
    return context, page


def log_in(page, url, username):
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.locator("form:has(#id_password) [type=submit]").click()


def banner_layout(page):
    """The banner's box, its button's, its headline's, and the page's width."""
    return page.evaluate(
        """() => {
            const aside = document.querySelector('aside.personalization-promotion[data-slot="home-banner"]');
            const box = e => { const b = e.getBoundingClientRect(); return {left: b.left, right: b.right, top: b.top, bottom: b.bottom, width: b.width, height: b.height}; };
            const main = document.querySelector('main.wrap'), style = getComputedStyle(main);
            const link = aside.querySelector('.personalization-promotion-link');
            return {
                banner: box(aside), link: box(link), headline: box(aside.querySelector('h2')),
                main: box(main), padding: parseFloat(style.paddingLeft),
                viewport: document.documentElement.clientWidth, page: document.documentElement.scrollWidth,
                background: getComputedStyle(aside).backgroundColor, border: getComputedStyle(aside).borderTopStyle,
                linkColour: getComputedStyle(link).color, linkBackground: getComputedStyle(link).backgroundColor,
                hero: box(document.querySelector('.hero')),
                image: Object.assign(box(aside.querySelector('img')), {natural: aside.querySelector('img').naturalWidth}),
                next: box(aside.nextElementSibling),
            };
        }"""
    )


def assert_banner_reads_well(layout, where):
    banner, link = layout["banner"], layout["link"]
    assert layout["page"] <= layout["viewport"], f"{where}: the page scrolls sideways: {layout}"
    # The banner spans the main column, inside it, as the hero above does.
    assert abs(banner["left"] - layout["hero"]["left"]) <= 1 and abs(banner["right"] - layout["hero"]["right"]) <= 1, (where, layout)
    # It stands apart from the hero above and from what follows, as a framed box of its own.
    assert banner["top"] >= layout["hero"]["bottom"] + 8, (where, layout)
    assert layout["next"]["top"] >= banner["bottom"] + 8, (where, layout)
    assert layout["background"] not in ("rgba(0, 0, 0, 0)", "transparent") or layout["border"] != "none", (where, layout)
    # The button lies inside the banner, is a comfortable tap target and is not a bare link.
    assert banner["left"] <= link["left"] and link["right"] <= banner["right"] and banner["top"] <= link["top"] and link["bottom"] <= banner["bottom"], (where, layout)
    assert link["height"] >= 36 and link["width"] >= 80, (where, layout)
    assert layout["linkBackground"] not in ("rgba(0, 0, 0, 0)", "transparent"), (where, layout)
    assert layout["headline"]["right"] <= banner["right"], (where, layout)


def test_a_promotion_made_in_the_admin_reaches_a_shopper_and_the_dashboard(shop, live_server, browser, artifacts):
    apple = shop["apple"]

    # 1. The owner makes the promotion in the admin.
    context, admin_page = open_page(browser, DESKTOP)
    try:
        log_in(admin_page, f"{live_server.url}/admin/login/?next=/admin/personalization/promotion/add/", "owner")
        admin_page.fill("#id_name", "Apple week")
        admin_page.fill("#id_slot", "home-banner")
        admin_page.fill("#id_headline", HEADLINE)
        admin_page.fill("#id_text", "Ten kinds from the orchard down the road, this week only.")
        admin_page.fill("#id_link_text", "See the apples")
        admin_page.set_input_files("#id_image", str(shop["picture"]))
        admin_page.fill("#id_product_id", str(apple.pk))
        admin_page.fill("#id_holdout_share", "0")
        admin_page.select_option("#id_audience", "everyone")
        with admin_page.expect_navigation():
            admin_page.click("input[name=_save]")
        assert "was added successfully" in admin_page.locator(".messagelist").inner_text()
        admin_page.screenshot(path=str(artifacts / "promotion-admin-saved.png"), full_page=True)
        promotion = Promotion.objects.get(name="Apple week")
        assert (promotion.slot, promotion.product_id, promotion.holdout_share) == ("home-banner", str(apple.pk), 0)
        assert promotion.image.name.endswith(".png")
        assert admin_page.script_errors == [] and admin_page.offline.failures == []
    finally:
        context.close()

    # 2. Shoppers see it on the home page, on a desktop and on a phone; the button leads to the product.
    for shopper, (name, viewport) in zip(shop["shoppers"], (("desktop", DESKTOP), ("phone", PHONE))):
        context, page = open_page(browser, viewport)
        serve_media(page, shop["media"])
        try:
            log_in(page, f"{live_server.url}/accounts/login/", shopper.username)
            assert page.url == live_server.url + "/"  # signing in leads home: one showing
            assert page.locator("header").get_by_text("Log in", exact=True).count() == 0  # signed in
            banner = page.locator('aside.personalization-promotion[data-slot="home-banner"]')
            assert banner.count() == 1
            assert banner.get_attribute("data-promotion-id") == str(promotion.pk)
            assert banner.locator("h2").inner_text() == HEADLINE
            assert "orchard down the road" in banner.inner_text()
            page.wait_for_function("() => { const i = document.querySelector('aside.personalization-promotion img'); return i && i.complete && i.naturalWidth > 0; }")
            layout = banner_layout(page)  # measured at the top of the page, as a shopper lands
            page.screenshot(path=str(artifacts / f"home-promotion-{name}.png"), full_page=False)
            banner.screenshot(path=str(artifacts / f"promotion-banner-{name}.png"))
            assert_banner_reads_well(layout, name)
            # The picture has loaded: in a 4:3 frame beside the words on a desktop, a small square beside
            # them on a phone, where the whole banner, button included, is on the first screen.
            image, headline = layout["image"], layout["headline"]
            shape = 4 / 3 if name == "desktop" else 1
            assert image["natural"] == 400 and abs(image["width"] / image["height"] - shape) < 0.02, (name, image)
            assert image["right"] < headline["left"] and image["top"] < headline["bottom"], (name, layout)
            assert image["width"] <= (240 if name == "desktop" else 100), (name, image)
            assert layout["link"]["bottom"] <= viewport["height"], (name, layout)
            with page.expect_navigation():
                banner.get_by_role("link", name="See the apples").click()
            assert page.url == live_server.url + apple.get_absolute_url()
            assert apple.title in page.locator("h1").inner_text()
            assert page.offline.blocked == [] and page.offline.failures == [], (page.offline.blocked, page.offline.failures)
        finally:
            context.close()
    shown = Event.objects.filter(kind=EventKind.IMPRESSION, data__promotion=promotion.pk)
    clicked = Event.objects.filter(kind=EventKind.CLICK, data__promotion=promotion.pk)
    assert shown.count() == 2 and clicked.count() == 2
    assert {e.user_id for e in clicked} == {str(s.pk) for s in shop["shoppers"]}

    # 3. The dashboard lists its impressions and clicks, and charts it.
    context, page = open_page(browser, DESKTOP)
    try:
        log_in(page, f"{live_server.url}/admin/login/?next=/personalization/dashboard/", "owner")
        section = page.locator('section[data-chart="promotions"]')
        page.wait_for_function(
            """() => document.querySelectorAll('section[data-chart="promotions"] svg .nv-groups rect.nv-bar').length === 2"""
        )
        row = section.locator(f'tr[data-promotion="{promotion.pk}"] td').all_inner_texts()
        assert row[0].startswith("Apple week") and row[1] == "2" and row[2].startswith("2 (100.00%)"), row
        assert row[4] == "0 / 2" and row[5] == "0 / 0", row  # nobody bought yet; nobody held out
        page.wait_for_timeout(500)
        section.screenshot(path=str(artifacts / "dashboard-promotion.png"))
        assert page.script_errors == [] and page.offline.failures == []
    finally:
        context.close()
