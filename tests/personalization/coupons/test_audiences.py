"""Coupon audiences: category affinity, abandoned carts, autoencoder segments, purchase propensity,
likely to redeem."""
import math
from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest
import torch
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from personalization import registry
from personalization.capture import privacy
from personalization.coupons import issuing as coupon_issuing
from personalization.learning.frames import purchase_frame
from personalization.ml import checkpoint
from personalization.ml.autoencoder import AutoencoderConfig, ShopperAutoencoder, segment_shoppers
from personalization.ml.propensity import PropensityConfig, PurchasePropensity
from personalization.models import Coupon, Event
from personalization.serving import audiences
from tests.factories import ProductFactory, UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def fresh_models(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    cache.clear()
    registry.forget_loaded()
    yield
    registry.forget_loaded()


def event(kind, user, product_id="1", hours_ago=0, quantity=1, **fields):
    return Event.objects.create(
        kind=kind,
        user_id=str(user.pk if hasattr(user, "pk") else user),
        product_id=str(product_id),
        quantity=quantity,
        created_at=NOW - timedelta(hours=hours_ago),
        **fields,
    )


# Category affinity


def test_category_affinity_takes_shoppers_whose_share_of_purchases_reaches_the_threshold():
    apple = ProductFactory(category__name="Fruit")
    fan, casual = UserFactory(), UserFactory()
    # The fan's purchases: 3 of 4 fruit, one recorded without a category (the store knows it's fruit).
    for product_id, category in [(1, "Fruit"), (2, "fruit"), (apple.pk, ""), (3, "Dairy")]:
        event("purchase", fan, product_id, category=category, order_id="A")
    for product_id, category in [(1, "Fruit"), (3, "Dairy"), (4, "Dairy"), (5, "Bakery")]:
        event("purchase", casual, product_id, category=category, order_id="B")

    shares = audiences.category_shares("Fruit")
    campaign = CouponCampaignFactory(affinity_category="Fruit", affinity_share=Decimal("0.50"))

    assert shares == {str(fan.pk): 0.75, str(casual.pk): 0.25}
    assert coupon_issuing.eligible_shoppers(campaign) == [fan.pk]


# Abandoned carts


def test_an_abandoned_cart_is_one_idle_long_enough_still_holding_something_and_not_bought_since():
    abandoned, bought_since, too_recent, emptied, returned = (UserFactory() for _ in range(5))
    event("cart_add", abandoned, hours_ago=5)
    event("cart_add", bought_since, hours_ago=5)
    event("purchase", bought_since, hours_ago=4, order_id="1")
    event("cart_add", too_recent, hours_ago=1)
    event("cart_add", emptied, hours_ago=6, quantity=2)
    event("cart_remove", emptied, hours_ago=5, quantity=2)
    event("purchase", returned, "7", hours_ago=48, order_id="2")
    event("cart_add", returned, "7", hours_ago=49)  # bought then
    event("cart_add", returned, "8", hours_ago=3)  # added after that purchase, still in the cart

    found = audiences.abandoned_carts(timedelta(hours=2), now=NOW)

    assert found == {str(abandoned.pk), str(returned.pk)}


def test_abandoned_cart_coupons_go_only_to_running_abandoned_cart_campaigns():
    shopper = UserFactory()
    event("cart_add", shopper, hours_ago=30)
    rescue = CouponCampaignFactory(audience="cart_abandonment", abandoned_hours=24)
    CouponCampaignFactory(audience="cart_abandonment", abandoned_hours=24, active=False)
    CouponCampaignFactory(affinity_category="Fruit")

    results = coupon_issuing.issue_abandoned_cart_coupons(now=NOW)

    assert {campaign.pk: result.issued for campaign, result in results.items()} == {rescue.pk: 1}
    assert list(Coupon.objects.values_list("campaign_id", "user_id")) == [(rescue.pk, shopper.pk)]


# Segments of the active shopper autoencoder


def shoppers_with_tastes(n_shoppers=16):
    """Shoppers of fruit and of dairy, each with their own mix of products, three orders each."""
    users = [UserFactory() for _ in range(n_shoppers)]
    for n, user in enumerate(users):
        aisle = "f" if n % 2 else "d"
        for order in range(3):
            for product in {f"{aisle}{n % 5}", f"{aisle}{(n + order) % 7}", f"x{n % 3}"}:
                event(
                    "purchase",
                    user,
                    product,
                    hours_ago=24 * (10 - order),
                    order_id=f"{n}-{order}",
                    category={"f": "Fruit", "d": "Dairy", "x": "Bakery"}[product[0]],
                )
    return users


def publish_active_autoencoder():
    """An autoencoder checkpoint as training publishes it: with its segments in `extra`."""
    from personalization.ml.orders import data_window
    from personalization.ml.sequences import build_sequences, item_categories

    frame = purchase_frame()
    sequences = build_sequences(frame)
    torch.manual_seed(0)
    model = ShopperAutoencoder(AutoencoderConfig(n_items=len(sequences.vocabulary), hidden_dim=8, latent_dim=4)).eval()
    labels, segments = segment_shoppers(model, sequences, item_categories(frame, sequences.vocabulary))
    artifact = checkpoint.save(
        model, vocabulary=sequences.vocabulary, data_window=data_window(frame), extra={"segments": segments}
    )
    registry.activate(registry.publish("autoencoder", artifact))
    return dict(zip(sequences.user_ids.tolist(), labels.tolist()))


def test_a_segment_audience_is_the_shoppers_the_active_autoencoder_put_in_that_segment():
    shoppers_with_tastes()
    trained_labels = publish_active_autoencoder()
    newcomer = UserFactory()
    event("purchase", newcomer, "f1", hours_ago=1, order_id="new", category="Fruit")  # after the model's data

    rebuilt = {segment: audiences.segment_members(segment) for segment in set(trained_labels.values())}

    assert len(rebuilt) > 2
    for segment, members in rebuilt.items():
        assert members == {user for user, label in trained_labels.items() if label == segment}
    assert str(newcomer.pk) not in set().union(*rebuilt.values())


def test_a_segment_audience_needs_an_active_autoencoder_and_an_existing_segment():
    with pytest.raises(audiences.AudienceUnavailable, match="no active shopper autoencoder"):
        audiences.segment_members(0)

    shoppers_with_tastes()
    publish_active_autoencoder()
    with pytest.raises(audiences.AudienceUnavailable, match="has no segment 9; it has 6"):
        audiences.segment_members(9)


# Purchase propensity


def recency_propensity():
    """A propensity model that is sure a shopper who ordered yesterday orders again and one who
    ordered a month ago does not: p = sigmoid(5 - days since the last order)."""
    from personalization.ml.features import PROPENSITY_FEATURES

    model = PurchasePropensity(PropensityConfig(n_features=len(PROPENSITY_FEATURES)))
    with torch.no_grad():
        model.net[0].weight.zero_()
        model.net[0].weight[0, PROPENSITY_FEATURES.index("days_since_last_order")] = -1.0
        model.net[0].bias.fill_(5.0)
    return model


def publish_active_propensity():
    from personalization.ml.features import PROPENSITY_FEATURES

    artifact = checkpoint.save(recency_propensity(), extra={"features": list(PROPENSITY_FEATURES)})
    registry.activate(registry.publish("propensity", artifact))


def test_a_propensity_audience_is_the_shoppers_whose_probability_falls_in_the_range():
    likely, unlikely = UserFactory(), UserFactory()
    event("purchase", likely, hours_ago=24, order_id="1")
    event("purchase", unlikely, hours_ago=24 * 30, order_id="2")
    publish_active_propensity()

    probabilities = audiences.purchase_propensities(NOW)
    campaign = CouponCampaignFactory(audience="propensity", propensity_min=None, propensity_max=Decimal("0.30"))

    assert probabilities[str(likely.pk)] > 0.9 > 0.01 > probabilities[str(unlikely.pk)]
    assert coupon_issuing.eligible_shoppers(campaign, now=NOW) == [unlikely.pk]


def test_a_propensity_audience_needs_an_active_propensity_model():
    with pytest.raises(audiences.AudienceUnavailable, match="no active purchase propensity model"):
        coupon_issuing.eligible_shoppers(CouponCampaignFactory(audience="propensity", propensity_min=Decimal("0.5")))


# Likely to redeem


def test_a_likely_to_redeem_campaign_reaches_past_redeemers_first_then_the_heaviest_buyers_of_its_categories():
    loyal, once, big_fruit, small_fruit, private, dairy_only, later = (UserFactory() for _ in range(7))
    privacy.opt_out(user=private)  # and yet holds history (e.g. imported after opting out)
    for user, lines in [(loyal, 0), (once, 1), (big_fruit, 5), (small_fruit, 2), (private, 9), (later, 3)]:
        for n in range(lines):
            event("purchase", user, f"f{n}", hours_ago=48, order_id=f"{user.pk}", category="Fruit")
    for user in (loyal, small_fruit, dairy_only):
        for n in range(4):
            event("purchase", user, f"d{n}", hours_ago=48, order_id=f"{user.pk}d", category="Dairy")
    earlier = CouponCampaignFactory(name="Earlier")
    for user in (loyal, loyal, once, private):
        CouponFactory(campaign=earlier, user=user, status="redeemed", redeemed_at=NOW - timedelta(days=3))
    CouponFactory(campaign=earlier, user=big_fruit)  # issued, never used
    CouponFactory(campaign=earlier, user=later, status="redeemed", redeemed_at=NOW + timedelta(hours=1))
    campaign = CouponCampaignFactory(
        audience="likely_to_redeem", audience_size=4, categories="Fruit", affinity_category="", affinity_share=None
    )

    result = coupon_issuing.issue(campaign, now=NOW)

    assert audiences.members(campaign, NOW)[:3] == [str(loyal.pk), str(private.pk), str(once.pk)]
    assert coupon_issuing.eligible_shoppers(campaign, now=NOW) == [loyal.pk, once.pk, big_fruit.pk, later.pk]
    assert result.issued == 4
    assert set(Coupon.objects.filter(campaign=campaign).values_list("user_id", flat=True)) == {
        loyal.pk, once.pk, big_fruit.pk, later.pk
    }


def test_redeem_ranking_orders_by_coupons_redeemed_then_lines_in_the_categories():
    lines = order_lines(
        ("buyer", "1", "p1", "2024-03-01", "Fruit"),
        ("buyer", "1", "p2", "2024-03-01", "fruit"),
        ("buyer", "2", "p3", "2024-03-02", "Fruit"),
        ("redeemer", "3", "p1", "2024-03-02", "Fruit"),
        ("redeemer", "3", "p9", "2024-03-02", "Dairy"),
        ("often", "4", "p9", "2024-03-03", "Dairy"),
        ("dairy", "5", "p9", "2024-03-03", "Dairy"),
        ("dairy", "5", "p8", "2024-03-03", "Dairy"),
        ("dairy", "5", "p7", "2024-03-03", "Dairy"),
        ("dairy", "5", "p6", "2024-03-03", "Dairy"),
    )
    redemptions = ["often", "redeemer", "often", "never-bought"]

    ranking = audiences.redeem_ranking(lines, redemptions, ["FRUIT"])
    any_category = audiences.redeem_ranking(lines, [], [])
    by_product = audiences.redeem_ranking(lines, [], [], products=["p9"])

    assert ranking.to_dict("index") == {
        "often": {"coupons_redeemed": 2, "lines_bought": 0},
        "never-bought": {"coupons_redeemed": 1, "lines_bought": 0},
        "redeemer": {"coupons_redeemed": 1, "lines_bought": 1},
        "buyer": {"coupons_redeemed": 0, "lines_bought": 3},
    }
    assert ranking.index.tolist() == ["often", "redeemer", "never-bought", "buyer"]
    assert any_category.index.tolist() == ["dairy", "buyer", "redeemer", "often"]
    assert by_product.index.tolist() == ["dairy", "often", "redeemer"]


def test_a_likely_to_redeem_campaign_needs_its_size():
    campaign = CouponCampaignFactory.build(audience="likely_to_redeem", audience_size=None)

    with pytest.raises(ValidationError, match="how many shoppers the campaign should reach"):
        campaign.full_clean()


# Scoring a frame of order lines (what the audiences read, and bench/campaigns.py on real campaigns)


def order_lines(*rows):
    return pd.DataFrame(rows, columns=["user_id", "order_id", "product_id", "ordered_at", "category"])


def test_purchase_shares_count_lines_in_any_of_the_categories_or_products_per_shopper():
    lines = order_lines(
        ("a", "1", "p1", "2024-03-01", "Fruit"),
        ("a", "1", "p2", "2024-03-01", " DAIRY "),
        ("a", "2", "p3", "2024-03-02", "Bakery"),
        ("a", "2", "p4", "2024-03-02", "Bakery"),
        ("b", "3", "p3", "2024-03-02", "Bakery"),
        ("b", "3", "p9", "2024-03-02", "Frozen"),
    )

    assert audiences.purchase_shares(lines, ["fruit", "Dairy"]) == {"a": 0.5, "b": 0.0}
    assert audiences.purchase_shares(lines, ["Fruit"], products=["p9"]) == {"a": 0.25, "b": 0.5}


def test_propensity_scores_read_only_the_orders_before_the_moment_scored():
    from personalization.ml.features import PROPENSITY_FEATURES

    lines = order_lines(
        ("regular", "1", "p1", "2024-03-30T12:00:00", "Fruit"),
        ("lapsed", "2", "p1", "2024-03-01T12:00:00", "Fruit"),
        ("lapsed", "3", "p1", "2024-04-02T12:00:00", "Fruit"),  # after the moment scored
        ("newcomer", "4", "p1", "2024-04-02T12:00:00", "Fruit"),
    )

    scores = audiences.propensity_scores(
        recency_propensity(), lines, pd.Timestamp("2024-03-31T12:00:00", tz="UTC"), list(PROPENSITY_FEATURES)
    )

    assert set(scores) == {"regular", "lapsed"}
    assert scores["regular"] == pytest.approx(1 / (1 + math.exp(-4.0)), abs=1e-5)
    assert scores["lapsed"] == pytest.approx(1 / (1 + math.exp(25.0)), abs=1e-9)
