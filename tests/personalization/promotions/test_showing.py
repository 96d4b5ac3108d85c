"""Personalized promotions: validation, targeting, schedule, priority, frequency cap, holdout, clicks,
attributed revenue and lift, erasure."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils import timezone

from personalization.capture import events, privacy
from personalization.models import Event, EventKind, Promotion, PromotionExposure
from personalization.promotions import showing as promotions
from personalization.promotions import stats as promotion_stats
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def product():
    return ProductFactory(title="Apple", category__name="Fruit")


@pytest.fixture
def promote(product):
    """A running promotion for every shopper of slot "home-banner", leading to `product`, no holdout."""

    def make(**fields):
        values = {
            "name": "Apples",
            "slot": "home-banner",
            "headline": "Crisp apples",
            "product_id": str(product.pk),
            "holdout_share": Decimal("0"),
            "starts_at": NOW - timedelta(days=1),
            **fields,
        }
        return Promotion.objects.create(**values)

    return make


@pytest.fixture
def write(django_capture_on_commit_callbacks):
    """Runs `work()` with the events it records written, as after a commit."""

    def run(work, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return work(*args, **kwargs)

    return run


def signed_in(user):
    return events.Shopper(user_id=user.pk)


def purchase(user, price, days_ago=0, quantity=1, category="Fruit", product_id="1"):
    Event.objects.create(
        kind="purchase", user_id=str(user.pk), product_id=product_id, quantity=quantity,
        unit_price=Decimal(price), category=category, order_id="o", created_at=NOW - timedelta(days=days_ago),
    )  # fmt: skip


# Validation


def errors_of(promotion):
    with pytest.raises(ValidationError) as raised:
        promotion.full_clean()
    return raised.value.message_dict


def test_a_promotion_must_end_after_it_starts_hold_out_a_share_and_lead_somewhere(product):
    promotion = Promotion(
        name="x", slot="home", headline="x", starts_at=NOW, ends_at=NOW - timedelta(hours=1), holdout_share=Decimal("1.5")
    )
    found = errors_of(promotion)
    assert "The promotion must end after it starts." in found["ends_at"]
    assert "The holdout share is a number from 0 to 1, such as 0.1 for a tenth." in found["holdout_share"]
    assert found["product_id"] == ["Give the product it leads to, or a category and its page."]

    both = Promotion(name="x", slot="home", headline="x", product_id=str(product.pk), category="Fruit")
    assert "not both" in errors_of(both)["category"][0]
    unknown = Promotion(name="x", slot="home", headline="x", product_id="999999")
    assert errors_of(unknown)["product_id"] == ["The store has no product 999999."]
    no_page = Promotion(name="x", slot="home", headline="x", category="Fruit")
    assert "address of the category's page" in errors_of(no_page)["category_url"][0]
    script = Promotion(name="x", slot="home", headline="x", category="Fruit", category_url="javascript:alert(1)")
    assert "category_url" in errors_of(script)
    Promotion(name="x", slot="home", headline="x", category="Fruit", category_url="/categories/fruit/").full_clean()


def test_an_audience_needs_its_own_fields(product):
    base = {"name": "x", "slot": "home", "headline": "x", "product_id": str(product.pk)}
    assert "segment" in errors_of(Promotion(audience="segment", **base))
    affinity = errors_of(Promotion(audience="category_affinity", **base))
    assert {"affinity_category", "affinity_share"} <= set(affinity)
    backwards = Promotion(audience="propensity", propensity_min=Decimal("0.8"), propensity_max=Decimal("0.2"), **base)
    assert errors_of(backwards)["propensity_max"] == ["The maximum cannot be below the minimum."]
    assert "abandoned_hours" in errors_of(Promotion(audience="cart_abandonment", **base))


# Choosing


def test_an_audience_member_sees_it_and_a_non_member_does_not(promote):
    fan, other = UserFactory(), UserFactory()
    purchase(fan, "2.00", days_ago=3)
    purchase(other, "2.00", days_ago=3, category="Dairy")
    promote(audience="category_affinity", affinity_category="Fruit", affinity_share=Decimal("0.5"))

    served = promotions.choose("home-banner", signed_in(fan))

    assert served.promotion.headline == "Crisp apples"
    assert promotions.choose("home-banner", signed_in(other)) is None
    assert promotions.choose("home-banner", events.Shopper(session_key="anonymous-visitor")) is None
    assert promotions.choose("other-slot", signed_in(fan)) is None


def test_an_abandoned_cart_audience_reaches_the_shopper_who_left_a_cart(promote):
    left, bought = UserFactory(), UserFactory()
    for user in (left, bought):
        Event.objects.create(kind="cart_add", user_id=str(user.pk), product_id="1", created_at=NOW - timedelta(hours=30))
    purchase(bought, "2.00", days_ago=1)
    promote(audience="cart_abandonment", abandoned_hours=24)

    assert promotions.choose("home-banner", signed_in(left)) is not None
    assert promotions.choose("home-banner", signed_in(bought)) is None


def test_only_running_promotions_show_and_the_highest_priority_wins(promote):
    shopper = signed_in(UserFactory())
    promote(name="Future", starts_at=NOW + timedelta(days=1), priority=50)
    promote(name="Ended", starts_at=NOW - timedelta(days=9), ends_at=NOW - timedelta(days=1), priority=40)
    promote(name="Off", active=False, priority=30)
    promote(name="Low", priority=1)
    promote(name="High", priority=10)

    assert promotions.choose("home-banner", shopper).promotion.name == "High"
    later = NOW + timedelta(days=2)
    assert promotions.choose("home-banner", shopper, now=later).promotion.name == "Future"


def test_the_frequency_cap_passes_the_slot_to_the_next_promotion(promote, write):
    shopper = signed_in(UserFactory())
    capped = promote(name="Capped", priority=10, frequency_cap=2)
    promote(name="Always", priority=1)

    shown = [write(promotions.choose, "home-banner", shopper).promotion.name for _ in range(4)]

    assert shown == ["Capped", "Capped", "Always", "Always"]
    assert PromotionExposure.objects.get(promotion=capped).impressions == 2
    impressions = Event.objects.filter(kind=EventKind.IMPRESSION, data__promotion=capped.pk)
    assert impressions.count() == 2


def test_a_held_out_shopper_sees_nothing_but_is_recorded_and_stays_held_out(promote, write):
    promotion = promote(holdout_share=Decimal("0.5"))
    users = [UserFactory() for _ in range(40)]
    first = {user.pk: write(promotions.choose, "home-banner", signed_in(user)) for user in users}
    again = {user.pk: write(promotions.choose, "home-banner", signed_in(user)) for user in users}

    groups = dict(PromotionExposure.objects.values_list("user_id", "group"))
    held = {int(pk) for pk, group in groups.items() if group == "holdout"}
    assert len(groups) == 40 and 8 <= len(held) <= 32  # about half (binomial, 40 draws)
    assert {pk for pk, served in first.items() if served is None} == held
    assert {pk for pk, served in again.items() if served is None} == held
    assert not Event.objects.filter(kind=EventKind.IMPRESSION, user_id__in=[str(pk) for pk in held]).exists()
    assert all(promotions.in_holdout(promotion, f"u{pk}") for pk in held)


def test_the_holdout_draw_follows_the_share_and_the_secret_key(promote, settings):
    promotion = promote(holdout_share=Decimal("0.2"))
    keys = [f"u{n}" for n in range(4000)]
    held = [promotions.in_holdout(promotion, key) for key in keys]
    assert 0.17 < sum(held) / len(held) < 0.23
    settings.SECRET_KEY = "another-secret-key-entirely-000000000000000000000"
    assert [promotions.in_holdout(promotion, key) for key in keys] != held  # not computable from outside


def test_an_opted_out_shopper_is_shown_nothing_and_not_recorded(promote):
    user = UserFactory()
    promote()
    privacy.opt_out(user=user)
    assert promotions.choose("home-banner", signed_in(user)) is None
    assert not PromotionExposure.objects.exists()


# Clicks


def test_a_click_counts_once_for_the_shopper_it_was_shown_to_and_cannot_be_forged(promote, product, write):
    shopper, stranger = signed_in(UserFactory()), signed_in(UserFactory())
    promotion = promote()
    served = write(promotions.choose, "home-banner", shopper)
    token = served.click_url.rstrip("/").rsplit("/", 1)[1]

    click = write(promotions.follow, token, shopper)
    assert (click.target, click.counted) == (product.get_absolute_url(), True)
    assert write(promotions.follow, token, shopper).counted is False  # replayed: once per showing
    assert write(promotions.follow, token, stranger).counted is False  # another shopper's link
    clicks = Event.objects.filter(kind=EventKind.CLICK, data__promotion=promotion.pk)
    assert list(clicks.values_list("user_id", flat=True)) == [str(shopper.user_id)]

    forged = signing.dumps([promotion.pk, served.recommendation_id, "home-banner"], salt="another-salt")
    with pytest.raises(signing.BadSignature):
        promotions.follow(forged, shopper)
    with pytest.raises(signing.BadSignature):
        promotions.follow(token[:-2] + "xx", shopper)


def test_an_old_click_link_leads_on_but_counts_nothing(promote, write, monkeypatch):
    shopper = signed_in(UserFactory())
    promote(product_id="", category="Fruit", category_url="/categories/fruit/")
    served = write(promotions.choose, "home-banner", shopper)
    token = served.click_url.rstrip("/").rsplit("/", 1)[1]
    monkeypatch.setattr(promotions, "CLICK_LINK_SECONDS", -1)

    click = write(promotions.follow, token, shopper)

    assert (click.target, click.counted) == ("/categories/fruit/", False)
    assert not Event.objects.filter(kind=EventKind.CLICK).exists()


# Revenue and lift


def test_attributed_revenue_and_lift_compare_the_shown_with_the_held_out(promote, write):
    promotion = promote(holdout_share=Decimal("0.5"), attribution_days=7, starts_at=NOW - timedelta(days=10))
    users = [UserFactory() for _ in range(60)]
    for user in users:
        write(promotions.choose, "home-banner", signed_in(user), now=NOW - timedelta(days=5))
    groups = dict(PromotionExposure.objects.values_list("user_id", "group"))
    shown = [u for u in users if groups[str(u.pk)] == "treatment"]
    held = [u for u in users if groups[str(u.pk)] == "holdout"]
    for user in shown[: len(shown) // 2]:
        purchase(user, "10.00", days_ago=2, quantity=2)  # within the window: 20.00 each
    purchase(shown[-1], "99.00", days_ago=6)  # before they met it: not counted
    purchase(held[0], "5.00", days_ago=1)

    result = promotion_stats.performance(promotion)

    buyers = len(shown) // 2
    assert result.impressions == len(shown) and result.clicks == 0
    assert (result.shown.shoppers, result.shown.converted) == (len(shown), buyers)
    assert (result.holdout.shoppers, result.holdout.converted) == (len(held), 1)
    assert result.attributed_revenue == Decimal("20.00") * buyers
    expected = buyers / len(shown) - 1 / len(held)
    lift = result.conversion_lift.estimate
    assert lift.value == pytest.approx(expected)
    assert lift.low < lift.value < lift.high
    assert result.revenue_lift.estimate.value == pytest.approx(20 * buyers / len(shown) - 5 / len(held))
    assert [p.promotion_id for p in promotion_stats.all_performance()] == [promotion.pk]


def test_a_promotion_without_a_holdout_has_no_lift_yet(promote, write):
    promotion = promote()
    write(promotions.choose, "home-banner", signed_in(UserFactory()))
    result = promotion_stats.performance(promotion)
    assert result.conversion_lift is None and result.lift_points is None


# Shoppers


def test_erasing_a_shopper_erases_their_promotion_records(promote, write):
    user, other = UserFactory(), UserFactory()
    promote()
    for who in (user, other):
        write(promotions.choose, "home-banner", signed_in(who))

    write(privacy.forget, user=user)

    assert list(PromotionExposure.objects.values_list("user_id", flat=True)) == [str(other.pk)]
    assert not Event.objects.filter(user_id=str(user.pk)).exists()


def test_an_anonymous_shoppers_group_follows_them_when_they_sign_in(promote, write):
    promote()
    write(promotions.choose, "home-banner", events.Shopper(session_key="visitor-session-0001"))
    user = UserFactory()

    promotions.merge_session(["visitor-session-0001"], user)
    write(promotions.choose, "home-banner", signed_in(user))

    exposure = PromotionExposure.objects.get()
    assert (exposure.user_id, exposure.impressions) == (str(user.pk), 2)
