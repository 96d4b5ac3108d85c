"""The demo store in Simplified Chinese: LANGUAGE_CODE, the footer's choice, the admin, and the catalogs."""
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from shop.models import Order, OrderLine
from tests.catalogs import LANGUAGES, expected_mo, mo_path, placeholders, po_path, read_mo, read_po
from tests.factories import PASSWORD, ProductFactory, UserFactory

CATALOGS = [(app, language) for app in ("shop", "personalization") for language in LANGUAGES]


@pytest.fixture(autouse=True)
def _language_restored():
    """A request leaves its language active in the thread: put back the one the test started with."""
    language = translation.get_language()
    yield
    translation.activate(language)


@pytest.fixture
def chinese(settings):
    settings.LANGUAGE_CODE = "zh-hans"


@pytest.mark.django_db
def test_the_home_page_is_in_chinese_with_language_code_zh_hans(client, chinese):
    ProductFactory(title="Bananas", category__name="Fruit")

    html = client.get(reverse("home")).content.decode()

    assert '<html lang="zh-hans">' in html
    assert "街角市集" in html  # the store's name
    assert "好东西，就在街角。" in html
    assert "全部 Fruit →" in html  # a placeholder filled in the translation
    assert "加入购物车" in html  # the product card's button
    assert "Add to cart" not in html and "Log in" not in html


@pytest.mark.django_db
def test_the_product_page_is_in_chinese(client, chinese):
    product = ProductFactory(title="Bananas", stock=5)

    html = client.get(product.get_absolute_url()).content.decode()

    assert "库存 5 件" in html
    assert "加入购物车" in html
    assert "数量" in html  # the form's label
    assert "in stock" not in html


@pytest.mark.django_db
def test_the_cart_page_and_its_messages_are_in_chinese(client, chinese):
    product = ProductFactory(title="Bananas", price=Decimal("2.50"))

    response = client.post(reverse("cart_add", args=[product.pk]), {"quantity": 2}, follow=True)
    html = client.get(reverse("cart")).content.decode()

    assert [str(message) for message in response.context["messages"]] == ["已将 2 × “Bananas”加入购物车。"]
    assert "我的购物车" in html
    assert "2 件商品" in html  # the plural form of "%(counter)s item"
    assert "去结算" in html
    assert "$5.00" in html


@pytest.mark.django_db
def test_an_empty_cart_and_a_refused_quantity_are_in_chinese(client, chinese):
    product = ProductFactory(stock=3)

    response = client.post(reverse("cart_add", args=[product.pk]), {"quantity": 500}, follow=True)

    assert "请选择 1 到 99 之间的数量。" in [str(message) for message in response.context["messages"]]
    client.post(reverse("cart_remove", args=[product.pk]))
    assert "您的购物车是空的。" in client.get(reverse("cart")).content.decode()


@pytest.mark.django_db
def test_the_shop_admin_is_in_chinese(admin_client, chinese):
    customer = UserFactory()
    product = ProductFactory(title="Bananas")
    order = Order.objects.create(user=customer, full_name="Ada", address="1 Main St", total=Decimal("2.50"))
    OrderLine.objects.create(order=order, product=product, title="Bananas", quantity=1, unit_price=Decimal("2.50"))

    changelist = admin_client.get(reverse("admin:shop_order_changelist")).content.decode()
    change = admin_client.get(reverse("admin:shop_order_change", args=[order.pk])).content.decode()

    assert f"订单 #{order.pk}" in changelist  # the order's name
    assert "下单时间" in changelist and "优惠码" in changelist  # columns
    assert "订单明细" in change and "单价" in change  # the lines' inline
    assert "站点管理" in admin_client.get(reverse("admin:index")).content.decode()  # Django's own catalog


@pytest.mark.django_db
def test_the_footer_switches_the_language_whatever_language_code_says(client):
    home = reverse("home")
    assert "Corner Market" in client.get(home).content.decode()

    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": home})

    assert response.status_code == 302 and response.url == home
    assert "街角市集" in client.get(home).content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": home})
    assert "Corner Market" in client.get(home).content.decode()


@pytest.mark.django_db
def test_language_code_decides_not_the_browser(client, chinese):
    html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()

    assert "街角市集" in html


@pytest.mark.django_db
def test_a_cookie_naming_a_language_the_store_does_not_offer_falls_back_to_language_code(client, settings, chinese):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"

    assert "街角市集" in client.get(reverse("home")).content.decode()


@pytest.mark.django_db
def test_checkout_is_in_chinese(client, chinese):
    user = UserFactory()
    client.login(username=user.username, password=PASSWORD)
    product = ProductFactory()
    client.post(reverse("cart_add", args=[product.pk]), {"quantity": 1})

    html = client.get(reverse("checkout")).content.decode()

    assert "配送信息" in html and "姓名" in html and "优惠码" in html
    assert "提交订单 · $2.50" in html


# The catalogs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("app,language", CATALOGS)
def test_no_entry_is_fuzzy_or_obsolete(app, language):
    entries = read_po(po_path(app, language))

    assert len(entries) > 1
    assert [e.msgid for e in entries if "fuzzy" in e.flags or e.obsolete] == []


@pytest.mark.parametrize("app", ["shop", "personalization"])
def test_every_chinese_entry_is_translated_with_its_placeholders(app):
    entries = read_po(po_path(app, "zh_Hans"))[1:]

    assert [e.msgid for e in entries if not all(e.msgstr.values())] == []
    assert [e.msgid for e in entries if len(e.msgstr) != 1] == []  # Chinese has one plural form
    for entry in entries:
        wanted = placeholders(entry.msgid_plural or entry.msgid)
        if "python-format" in entry.flags and entry.msgid_plural is None:
            assert placeholders(entry.msgstr[0]) == wanted, entry.msgid
        else:  # plural and plain texts may leave a count out, but not make one up
            assert set(placeholders(entry.msgstr[0])) <= set(wanted), entry.msgid


@pytest.mark.parametrize("app", ["shop", "personalization"])
def test_english_and_chinese_catalogs_hold_the_same_messages(app):
    english, chinese = (read_po(po_path(app, language))[1:] for language in LANGUAGES)

    assert sorted(e.key for e in english) == sorted(e.key for e in chinese)


@pytest.mark.parametrize("app,language", CATALOGS)
def test_the_compiled_catalog_is_up_to_date(app, language):
    """`make messages` compiles the .mo files; they are committed, so a change to a .po needs it."""
    assert read_mo(mo_path(app, language)) == expected_mo(read_po(po_path(app, language)))


@pytest.mark.parametrize("app", ["shop", "personalization"])
def test_the_catalog_headers_name_their_language_and_plural_forms(app):
    for language, plurals in (("en", "nplurals=2; plural=(n != 1);"), ("zh_Hans", "nplurals=1; plural=0;")):
        header = read_po(po_path(app, language))[0]
        assert header.msgid == "" and "fuzzy" not in header.flags
        assert f"Language: {language}\n" in header.msgstr[0]
        assert f"Plural-Forms: {plurals}\n" in header.msgstr[0]
        assert "charset=UTF-8" in header.msgstr[0]
