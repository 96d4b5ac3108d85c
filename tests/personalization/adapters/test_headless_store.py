"""A store whose catalog, cart and orders are not Django models (they live in another service):
only a StoreAdapter subclass and personalization.track() run the whole flow."""
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import personalization
from personalization import coupons
from personalization.adapters import ProductInfo, StoreAdapter, get_adapter
from personalization.checks import check_settings
from personalization.models import Coupon, Event, EventKind, Placement
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory
from tests.personalization.stores import train_and_activate

SHELVES = {"Dairy": ["Milk", "Butter", "Cheese", "Yogurt"], "Bakery": ["Bread", "Croissant", "Bagel", "Rye"]}
CATALOG = {
    f"sku-{title.lower()}": ProductInfo(
        id=f"sku-{title.lower()}", title=title, category=shelf, price=Decimal("3.00"), stock=None, active=True,
        url=f"https://shop.example/p/{title.lower()}",
    )
    for shelf, titles in SHELVES.items()
    for title in titles
}  # fmt: skip


class HeadlessStore(StoreAdapter):
    """The whole adapter of a store whose catalog is a remote service (here: a dict)."""

    def products(self, product_ids):
        return {str(pid): CATALOG[str(pid)] for pid in product_ids if str(pid) in CATALOG}

    def catalog(self):
        return iter(CATALOG.values())


@pytest.fixture
def headless(settings, model_files):
    settings.PERSONALIZATION = {"ADAPTER": f"{__name__}.HeadlessStore"}


def record_orders(users_by_taste, django_capture_on_commit_callbacks):
    rng, start = random.Random(0), timezone.now() - timedelta(days=40)
    with django_capture_on_commit_callbacks(execute=True):
        for taste, users in users_by_taste.items():
            skus = [f"sku-{title.lower()}" for title in SHELVES[taste]]
            for n, user in enumerate(users):
                for number in range(4):
                    for sku in skus[:2] + rng.sample(skus[2:], 1):
                        assert personalization.track(
                            user, "purchase", sku, order_id=f"{user.pk}-{number}", unit_price="3.00",
                            created_at=start + timedelta(days=7 * number, hours=n),
                        )  # fmt: skip


def test_a_store_without_cart_or_order_models_runs_the_whole_flow(db, headless, django_capture_on_commit_callbacks):
    assert check_settings() == [] and isinstance(get_adapter(), HeadlessStore)
    make = get_user_model().objects.create_user
    users = {taste: [make(f"{taste.lower()}{n}") for n in range(6)] for taste in SHELVES}
    record_orders(users, django_capture_on_commit_callbacks)
    shopper = users["Dairy"][0]
    with django_capture_on_commit_callbacks(execute=True):
        assert personalization.track(shopper, "cart_add", "sku-cheese", quantity=2)
    assert Event.objects.filter(kind=EventKind.PURCHASE).count() == 12 * 4 * 3

    train_and_activate()  # the purchases' categories come from the adapter (track gave none)
    Placement.objects.create(slug="headless-for-you", name="For you", strategy=Placement.Strategy.FOR_YOU, limit=3)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=shopper).key}")
    with django_capture_on_commit_callbacks(execute=True):
        body = client.get("/api/personalization/recommendations/", {"placement": "headless-for-you"}).json()

    assert len(body["items"]) == 3
    assert {item["product_id"] for item in body["items"]} <= set(CATALOG) and all(i["explanation"] for i in body["items"])
    assert all(item["url"] == CATALOG[item["product_id"]].url for item in body["items"])

    coupon = CouponFactory(user=shopper, campaign=CouponCampaignFactory(affinity_category="Dairy"))
    discount = coupons.redeem(coupon.code, shopper, "order-77", Decimal("30.00"), ["Dairy"])

    assert discount.amount == Decimal("3.00")
    assert Coupon.objects.get(pk=coupon.pk).order_id == "order-77"


def test_a_product_in_several_categories_counts_for_each_in_affinities(db, headless, django_capture_on_commit_callbacks):
    from dataclasses import replace

    from personalization.serving.audiences import category_shares

    CATALOG["sku-cheese"] = replace(CATALOG["sku-cheese"], categories=("Dairy", "Deli"))
    try:
        buyer = get_user_model().objects.create_user("deli")
        with django_capture_on_commit_callbacks(execute=True):
            personalization.track(buyer, "purchase", "sku-cheese", order_id="1")
            personalization.track(buyer, "purchase", "sku-milk", order_id="1")

        assert category_shares("deli") == {str(buyer.pk): 0.5}
        assert category_shares("Dairy") == {str(buyer.pk): 1.0}
    finally:
        CATALOG["sku-cheese"] = replace(CATALOG["sku-cheese"], categories=())
