"""The plugin speaks the shopper's and the shop owner's language: explanations, coupons, privacy, admin."""
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from personalization.capture import events
from personalization.coupons import codes as coupons
from personalization.models import Event, EventKind, Placement
from personalization.serving import explanations
from personalization.templatetags.coupon_tags import personalized_coupon
from tests.factories import ProductFactory, UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory


@pytest.fixture(autouse=True)
def _language_restored():
    language = translation.get_language()
    yield
    translation.activate(language)


@pytest.fixture
def chinese(settings):
    settings.LANGUAGE_CODE = "zh-hans"


def test_explanations_and_headings_are_written_in_the_active_language():
    with translation.override("zh-hans"):
        assert explanations.explain(explanations.REPEAT, count=3) == "您已购买过 3 次"
        assert explanations.explain(explanations.BOUGHT_TOGETHER, anchor_title="Bananas") == "常与 Bananas 一起购买"
        assert explanations.explain(explanations.POPULAR, category="Fruit") == "Fruit 类热销"
        assert explanations.heading(Placement(), Placement.Strategy.BUY_AGAIN) == "再次购买"
    with translation.override("en"):
        assert explanations.explain(explanations.REPEAT, count=3) == "You have bought this 3 times"
        assert explanations.heading(Placement(), Placement.Strategy.BUY_AGAIN) == "Buy again"


def test_every_explanation_and_heading_has_a_chinese_text():
    with translation.override("zh-hans"):
        texts = [str(heading) for heading in explanations.HEADINGS.values()] + [
            explanations.explain(code, anchor_title="X", count=2, category="Y") for code in explanations.CODES
        ]
    with translation.override("en"):
        english = [str(heading) for heading in explanations.HEADINGS.values()] + [
            explanations.explain(code, anchor_title="X", count=2, category="Y") for code in explanations.CODES
        ]
    assert [text for text, original in zip(texts, english) if text == original] == []


@pytest.mark.django_db
def test_coupon_errors_are_written_in_the_shoppers_language():
    shopper = UserFactory()
    with translation.override("zh-hans"):
        with pytest.raises(coupons.CouponError) as unknown:
            coupons.validate("NOPE-NOPE", shopper, Decimal("20"))
        assert str(unknown.value) == "找不到此优惠码，请检查后重试。"

        coupon = CouponFactory(user=shopper, campaign=CouponCampaignFactory(min_cart_total=Decimal("50")))
        with pytest.raises(coupons.BelowMinimum) as below:
            coupons.validate(coupon.code, shopper, Decimal("20"))
        assert str(below.value).startswith("此优惠券要求购物车金额至少为 ")


@pytest.mark.django_db
def test_the_coupon_banner_is_in_chinese():
    coupon = CouponFactory(campaign=CouponCampaignFactory(discount_value=Decimal("10"), min_cart_total=Decimal("15")))
    request = RequestFactory().get("/cart/")
    request.user = coupon.user

    with translation.override("zh-hans"):
        html = render_to_string("personalization/coupon.html", personalized_coupon({"request": request}, Decimal("30")))

    assert "立减 10%" in html
    assert "本购物车可省 $3.00" in html  # the demo store's override writes its currency before amounts
    assert "适用于金额满 $15.00 的购物车。" in html
    assert f'您的专属优惠码：<code class="coupon-code">{coupon.code}</code>' in html


@pytest.mark.django_db
def test_the_privacy_page_and_its_message_are_in_chinese(client, chinese):
    url = reverse("personalization:privacy")

    assert "关闭个性化并删除我的数据" in client.get(url).content.decode()
    response = client.post(url, {"choice": "opt_out"}, follow=True)

    assert [str(message) for message in response.context["messages"]] == ["个性化已关闭，我们记录的关于您的数据已删除。"]
    assert "开启个性化" in response.content.decode()


@pytest.mark.django_db
def test_recommendations_on_the_home_page_are_in_chinese(client, chinese, django_capture_on_commit_callbacks):
    shopper = UserFactory()
    for product in ProductFactory.create_batch(3, category__name="Fruit"):
        with django_capture_on_commit_callbacks(execute=True):
            events.record(EventKind.PURCHASE, product.pk, user_id=str(shopper.pk), quantity=1)

    html = client.get(reverse("home")).content.decode()

    assert 'data-placement="home-for-you"' in html
    assert "本周热门" in html or "当前热销" in html  # the fallback's heading and reasons
    assert "Trending this week" not in html and "Popular" not in html


@pytest.fixture
def owner_client(client):
    owner = get_user_model().objects.create_superuser("owner", "owner@example.com", "a-long-pass-phrase")
    client.force_login(owner)
    return client


@pytest.mark.django_db
def test_the_plugins_admin_is_in_chinese(owner_client, chinese):
    CouponCampaignFactory()
    placements = owner_client.get(reverse("admin:personalization_placement_changelist")).content.decode()
    placement = owner_client.get(
        reverse("admin:personalization_placement_change", args=[Placement.objects.get(slug="home-for-you").pk])
    ).content.decode()
    campaigns = owner_client.get(reverse("admin:personalization_couponcampaign_add")).content.decode()

    assert "个性化" in owner_client.get(reverse("admin:index")).content.decode()  # the app's name
    assert "推荐位" in placements and "为你推荐（顾客自编码器）" in placements
    assert "展示内容" in placement and "备选策略" in placement and "排除购物车中的商品" in placement
    assert "受众" in campaigns and "对照组比例" in campaigns and "按购物车金额的百分比" in campaigns
    assert "立即发放优惠券" in owner_client.get(reverse("admin:personalization_couponcampaign_changelist")).content.decode()


@pytest.mark.django_db
def test_admin_validation_messages_are_in_chinese(owner_client, chinese):
    response = owner_client.post(
        reverse("admin:personalization_placement_add"),
        {"name": "X", "slug": "x", "page": "home", "strategy": "popular", "fallback_strategy": "popular", "limit": 4},
    )

    assert "请选择与策略本身不同的备选策略。" in response.content.decode()


@pytest.mark.django_db
def test_the_event_log_names_events_in_chinese(owner_client, chinese):
    event = Event.objects.create(kind=EventKind.PURCHASE, user_id="7", product_id="12")

    with translation.override("zh-hans"):
        assert str(event) == "用户 7：购买（商品 12）"
    assert "事件" in owner_client.get(reverse("admin:personalization_event_changelist")).content.decode()
