"""The dashboard's figures (personalization.dashboard.analytics) against hand-made events: exact numbers."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from personalization.dashboard import analytics
from personalization.models import Coupon, CouponAssignment, Event, EventKind, ModelVersion, Placement
from tests.factories import UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def event(kind, product="1", user="7", **fields):
    return Event.objects.create(kind=kind, product_id=product, user_id=user, **fields)


def shown(placement, times, kind=EventKind.IMPRESSION, **fields):
    for _ in range(times):
        event(kind, data={"placement": placement, "position": 1}, recommendation_id="r1", **fields)


def test_impressions_clicks_and_ctr_per_placement():
    Placement.objects.filter(slug="home-for-you").update(name="For you (home)")
    shown("home-for-you", 8)
    shown("home-for-you", 2, kind=EventKind.CLICK)
    shown("gone-placement", 4)
    event(EventKind.IMPRESSION, data={})  # no placement: not counted
    event(EventKind.VIEW, data={"placement": "home-for-you"})  # not an impression
    shown("home-for-you", 5, created_at=NOW - timedelta(days=40))

    recent = analytics.placement_ctr(since=NOW - timedelta(days=30))

    assert [(s.slug, s.name, s.impressions, s.clicks, s.ctr) for s in recent] == [
        ("home-for-you", "For you (home)", 8, 2, 0.25),
        ("gone-placement", "gone-placement", 4, 0, 0.0),
    ]
    assert analytics.placement_ctr()[0].impressions == 13


def test_add_to_carts_and_revenue_attributed_to_recommendations():
    event(EventKind.CART_ADD, recommendation_id="r1")
    event(EventKind.CART_ADD, recommendation_id="r2", quantity=3)
    event(EventKind.CART_ADD)  # not from a recommendation
    event(EventKind.PURCHASE, recommendation_id="r1", quantity=2, unit_price=Decimal("4.50"), order_id="1")
    event(EventKind.PURCHASE, recommendation_id="r2", quantity=1, unit_price=Decimal("10.00"), order_id="1")
    event(EventKind.PURCHASE, quantity=5, unit_price=Decimal("99.00"), order_id="1")  # not attributed
    event(EventKind.CLICK, recommendation_id="r1")

    assert analytics.attributed() == {"cart_adds": 2, "purchases": 2, "revenue": Decimal("19.00")}


def test_nothing_attributed_is_zero_revenue():
    assert analytics.attributed() == {"cart_adds": 0, "purchases": 0, "revenue": Decimal("0.00")}


def test_coupons_issued_and_redeemed():
    CouponFactory.create_batch(3)
    CouponFactory(status=Coupon.Status.REDEEMED, redeemed_at=NOW)
    CouponFactory(status=Coupon.Status.EXPIRED, issued_at=NOW - timedelta(days=60))

    assert analytics.coupon_totals() == {"issued": 5, "redeemed": 1}
    assert analytics.coupon_totals(since=NOW - timedelta(days=30)) == {"issued": 4, "redeemed": 1}


def assign(campaign, group, bought_after=None):
    user = UserFactory()
    assigned_at = NOW - timedelta(days=20)
    CouponAssignment.objects.create(campaign=campaign, user=user, group=group, assigned_at=assigned_at)
    if bought_after is not None:
        event(EventKind.PURCHASE, user=str(user.pk), order_id=f"o{user.pk}", created_at=assigned_at + bought_after)
    return user


def test_incremental_conversion_of_treatment_against_holdout():
    campaign = CouponCampaignFactory(name="Fruit lovers", coupon_valid_days=14, holdout_share=Decimal("0.5"))
    treatment, holdout = CouponAssignment.Group.TREATMENT, CouponAssignment.Group.HOLDOUT
    assign(campaign, treatment, bought_after=timedelta(days=2))
    assign(campaign, treatment, bought_after=timedelta(days=13))
    assign(campaign, treatment, bought_after=timedelta(days=15))  # after the coupon would expire
    assign(campaign, treatment, bought_after=-timedelta(days=1))  # before the assignment
    assign(campaign, holdout, bought_after=timedelta(days=1))
    assign(campaign, holdout)
    assign(campaign, holdout)
    assign(campaign, holdout)
    buyer = assign(campaign, treatment, bought_after=timedelta(days=3))
    event(EventKind.PURCHASE, user=str(buyer.pk), order_id="again", created_at=NOW - timedelta(days=16))  # one shopper
    CouponCampaignFactory(name="Nobody assigned")

    [result] = analytics.incremental_conversion()

    assert (result.name, result.treatment.shoppers, result.treatment.converted) == ("Fruit lovers", 5, 3)
    assert (result.holdout.shoppers, result.holdout.converted) == (4, 1)
    assert result.treatment.rate == 0.6
    assert result.holdout.rate == 0.25
    assert result.difference == pytest.approx(0.35)


def test_conversion_stops_when_the_campaign_ends():
    campaign = CouponCampaignFactory(coupon_valid_days=14, ends_at=NOW - timedelta(days=15))
    assign(campaign, CouponAssignment.Group.TREATMENT, bought_after=timedelta(days=4))  # 16 days ago: counts
    assign(campaign, CouponAssignment.Group.TREATMENT, bought_after=timedelta(days=6))  # 14 days ago: ended

    [result] = analytics.incremental_conversion()

    assert (result.treatment.shoppers, result.treatment.converted, result.holdout.shoppers) == (2, 1, 0)
    assert result.holdout.rate == 0.0


def test_held_out_recall_at_10_of_each_version_over_time():
    def version(kind, number, days_ago, metrics):
        return ModelVersion.objects.create(
            kind=kind, number=number, artifact=f"v{kind}{number}.pt", metrics=metrics, created_at=NOW - timedelta(days=days_ago)
        )

    version("next_basket", 2, 1, {"recall@10": 0.31, "ndcg@10": 0.2})
    version("next_basket", 1, 5, {"recall@10": 0.25})
    version("autoencoder", 1, 3, {"recall@10": 0.12})
    version("propensity", 1, 2, {"auc": 0.7})

    history = analytics.recall_history()

    assert history == {
        "next_basket": [(NOW - timedelta(days=5), 1, 0.25), (NOW - timedelta(days=1), 2, 0.31)],
        "autoencoder": [(NOW - timedelta(days=3), 1, 0.12)],
    }
