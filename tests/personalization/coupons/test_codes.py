"""Personalized coupons: unguessable codes, checks with clear reasons, single use, the budget, holdouts, issuing."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone

from personalization.capture import privacy
from personalization.coupons import codes as coupons
from personalization.coupons import issuing as coupon_issuing
from personalization.models import Coupon, CouponAssignment, CouponCampaign, Event
from personalization.templatetags.coupon_tags import personalized_coupon
from tests.factories import UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory

pytestmark = pytest.mark.django_db

UNAMBIGUOUS = set("ABCDEFGHJKMNPQRSTUVWXYZ23456789")


def bought(user, category, times=1):
    for _ in range(times):
        Event.objects.create(kind="purchase", user_id=str(user.pk), product_id="1", order_id="1", category=category)


# Codes


def test_codes_are_long_random_and_use_only_unmistakable_characters():
    codes = [coupons.new_code() for _ in range(500)]

    assert len(set(codes)) == 500
    assert all(len(code) >= 10 for code in codes)
    assert set("".join(codes)) <= UNAMBIGUOUS
    assert not set("".join(codes)) & set("0O1IL")


def test_a_new_code_never_repeats_a_stored_one(monkeypatch):
    taken = CouponFactory(code="AAAAAAAAAAAA").code
    drawn = iter([taken, "BBBBBBBBBBBB"])
    monkeypatch.setattr(coupons, "new_code", lambda: next(drawn))

    assert coupons.new_codes(1) == ["BBBBBBBBBBBB"]


def test_a_code_is_found_whatever_its_case_spaces_or_dashes():
    coupon = CouponFactory(code="ABCDEFGHJKMN")

    discount = coupons.validate(" abcd-efgh jkmn ", coupon.user, Decimal("20.00"), ["Fruit"])

    assert discount.code == "ABCDEFGHJKMN"


# Checking a coupon


def test_a_percentage_coupon_takes_its_share_up_to_its_maximum():
    campaign = CouponCampaignFactory(discount_value=Decimal("15"), max_discount=Decimal("5.00"))
    small, large = CouponFactory(campaign=campaign), CouponFactory(campaign=campaign)

    assert coupons.validate(small.code, small.user, Decimal("20.00")).amount == Decimal("3.00")
    assert coupons.validate(large.code, large.user, Decimal("80.00")).amount == Decimal("5.00")


def test_a_fixed_coupon_never_takes_off_more_than_the_cart_is_worth():
    coupon = CouponFactory(campaign=CouponCampaignFactory(discount_kind="fixed", discount_value=Decimal("10.00")))

    assert coupons.validate(coupon.code, coupon.user, Decimal("25.00")).amount == Decimal("10.00")
    assert coupons.validate(coupon.code, coupon.user, Decimal("7.50")).amount == Decimal("7.50")


def test_an_unknown_code_is_refused_with_a_clear_message():
    with pytest.raises(coupons.UnknownCoupon, match="We do not know this coupon code"):
        coupons.validate("NOSUCHCODE22", UserFactory(), Decimal("20.00"))


def test_another_shoppers_coupon_is_refused_exactly_as_an_unknown_code():
    coupon = CouponFactory()

    with pytest.raises(coupons.NotYourCoupon) as theirs:
        coupons.validate(coupon.code, UserFactory(), Decimal("20.00"))
    with pytest.raises(coupons.UnknownCoupon) as unknown:
        coupons.validate("NOSUCHCODE22", UserFactory(), Decimal("20.00"))

    assert (theirs.value.code, str(theirs.value)) == (unknown.value.code, str(unknown.value))


def test_an_anonymous_shopper_cannot_use_a_coupon():
    from django.contrib.auth.models import AnonymousUser

    coupon = CouponFactory()

    with pytest.raises(coupons.NotYourCoupon):
        coupons.validate(coupon.code, AnonymousUser(), Decimal("20.00"))


def test_an_expired_coupon_is_refused_with_its_date():
    coupon = CouponFactory(expires_at=timezone.now() - timedelta(minutes=1))

    with pytest.raises(coupons.CouponExpired, match="This coupon expired on"):
        coupons.validate(coupon.code, coupon.user, Decimal("20.00"))


def test_a_cart_below_the_minimum_is_refused_with_the_minimum():
    coupon = CouponFactory(campaign=CouponCampaignFactory(min_cart_total=Decimal("30.00")))

    with pytest.raises(coupons.BelowMinimum, match=r"at least 30\.00; yours is worth 29\.99"):
        coupons.validate(coupon.code, coupon.user, Decimal("29.99"))
    assert coupons.validate(coupon.code, coupon.user, Decimal("30.00")).amount == Decimal("3.00")


def test_a_cart_without_the_campaigns_categories_is_refused_with_them():
    coupon = CouponFactory(campaign=CouponCampaignFactory(categories="Dairy\nBakery"))

    with pytest.raises(coupons.WrongCategories, match="Dairy, Bakery"):
        coupons.validate(coupon.code, coupon.user, Decimal("20.00"), ["Fruit", "Vegetables"])
    assert coupons.validate(coupon.code, coupon.user, Decimal("20.00"), ["Fruit", "bakery"]).amount == Decimal("2.00")


def test_a_used_coupon_is_refused():
    coupon = CouponFactory()
    coupons.redeem(coupon.code, coupon.user, "501", Decimal("20.00"))

    with pytest.raises(coupons.CouponUsed, match="already been used"):
        coupons.validate(coupon.code, coupon.user, Decimal("20.00"))


@pytest.mark.parametrize(
    "campaign_fields",
    [
        {"active": False},
        {"starts_at": timezone.now() + timedelta(days=1)},
        {"ends_at": timezone.now() - timedelta(minutes=1), "starts_at": timezone.now() - timedelta(days=2)},
    ],
    ids=["switched off", "not started", "ended"],
)
def test_a_coupon_of_a_campaign_that_is_not_running_is_refused(campaign_fields):
    coupon = CouponFactory(campaign=CouponCampaignFactory(**campaign_fields))

    with pytest.raises(coupons.OfferEnded):
        coupons.validate(coupon.code, coupon.user, Decimal("20.00"))


# Redeeming


def test_redeeming_records_the_order_and_discount_and_counts_it_against_the_budget():
    coupon = CouponFactory()

    discount = coupons.redeem(coupon.code, coupon.user, 42, Decimal("20.00"), ["Fruit"])

    coupon.refresh_from_db()
    assert discount.amount == Decimal("2.00")
    assert (coupon.status, coupon.order_id, coupon.discount) == ("redeemed", "42", Decimal("2.00"))
    assert coupon.redeemed_at is not None
    assert CouponCampaign.objects.get().spent == Decimal("2.00")


def test_a_coupon_is_redeemed_only_once():
    coupon = CouponFactory()
    coupons.redeem(coupon.code, coupon.user, "1", Decimal("20.00"))

    with pytest.raises(coupons.CouponUsed):
        coupons.redeem(coupon.code, coupon.user, "2", Decimal("20.00"))
    coupon.refresh_from_db()
    assert coupon.order_id == "1"
    assert CouponCampaign.objects.get().spent == Decimal("2.00")


def test_a_redemption_rolled_back_with_its_order_leaves_the_coupon_unused():
    coupon = CouponFactory()

    with pytest.raises(RuntimeError), transaction.atomic():
        coupons.redeem(coupon.code, coupon.user, "1", Decimal("20.00"))
        raise RuntimeError("the order failed")

    coupon.refresh_from_db()
    assert (coupon.status, coupon.redeemed_at, coupon.order_id) == ("issued", None, "")
    assert CouponCampaign.objects.get().spent == Decimal("0")
    assert coupons.redeem(coupon.code, coupon.user, "2", Decimal("20.00")).amount == Decimal("2.00")


def test_the_budget_is_never_exceeded_by_redemptions_one_after_another():
    campaign = CouponCampaignFactory(discount_kind="fixed", discount_value=Decimal("10.00"), budget=Decimal("25.00"))
    held = [CouponFactory(campaign=campaign) for _ in range(4)]

    outcomes = []
    for coupon in held:
        try:
            outcomes.append(coupons.redeem(coupon.code, coupon.user, coupon.pk, Decimal("40.00")).amount)
        except coupons.BudgetExhausted:
            outcomes.append("out of budget")

    assert outcomes == [Decimal("10.00"), Decimal("10.00"), "out of budget", "out of budget"]
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("20.00")
    assert Coupon.objects.filter(status="redeemed").count() == 2
    # The refused coupons stay usable should the budget be raised.
    assert Coupon.objects.filter(status="issued", redeemed_at__isnull=True).count() == 2


def test_checking_a_coupon_says_when_the_budget_cannot_cover_it():
    campaign = CouponCampaignFactory(discount_kind="fixed", discount_value=Decimal("10.00"), budget=Decimal("5.00"))
    coupon = CouponFactory(campaign=campaign)

    with pytest.raises(coupons.BudgetExhausted, match="run out"):
        coupons.validate(coupon.code, coupon.user, Decimal("40.00"))


def test_expire_marks_only_unused_coupons_past_their_date():
    past = timezone.now() - timedelta(hours=1)
    old = CouponFactory(expires_at=past)
    used = CouponFactory(expires_at=past, status="redeemed", redeemed_at=past - timedelta(days=1), order_id="9")
    fresh = CouponFactory()

    assert coupon_issuing.expire() == 1

    statuses = dict(Coupon.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "expired", used.pk: "redeemed", fresh.pk: "issued"}


# Issuing


def test_issuing_gives_each_shopper_of_the_audience_one_coupon_bound_to_them():
    fans = [UserFactory() for _ in range(3)]
    for fan in fans:
        bought(fan, "Fruit", 3)
    other = UserFactory()
    bought(other, "Dairy", 3)
    campaign = CouponCampaignFactory(coupon_valid_days=10)
    now = timezone.now()

    result = coupon_issuing.issue(campaign, now=now)

    assert (result.eligible, result.issued, result.held_out) == (3, 3, 0)
    issued = Coupon.objects.filter(campaign=campaign)
    assert sorted(issued.values_list("user_id", flat=True)) == sorted(fan.pk for fan in fans)
    assert {c.expires_at for c in issued} == {now + timedelta(days=10)}
    assert len({c.code for c in issued}) == 3


def test_issuing_again_gives_nothing_new_while_the_coupon_is_unused():
    fan = UserFactory()
    bought(fan, "Fruit")
    campaign = CouponCampaignFactory()
    coupon_issuing.issue(campaign)

    again = coupon_issuing.issue(campaign)

    assert (again.issued, again.have_one) == (0, 1)
    assert Coupon.objects.count() == 1


def test_a_shopper_gets_a_new_coupon_after_using_one_only_within_the_per_shopper_limit():
    fan = UserFactory()
    bought(fan, "Fruit")
    campaign = CouponCampaignFactory(per_shopper_limit=2)
    coupon_issuing.issue(campaign)
    coupons.redeem(Coupon.objects.get().code, fan, "1", Decimal("20.00"))

    second = coupon_issuing.issue(campaign)
    coupons.redeem(Coupon.objects.get(status="issued").code, fan, "2", Decimal("20.00"))
    third = coupon_issuing.issue(campaign)

    assert (second.issued, third.issued, third.at_limit) == (1, 0, 1)
    assert Coupon.objects.filter(user=fan).count() == 2


def test_a_coupon_never_outlives_its_campaign():
    fan = UserFactory()
    bought(fan, "Fruit")
    now = timezone.now()
    campaign = CouponCampaignFactory(ends_at=now + timedelta(days=2), coupon_valid_days=14)

    coupon_issuing.issue(campaign, now=now)

    assert Coupon.objects.get().expires_at == now + timedelta(days=2)


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"active": False}, "switched off"),
        ({"starts_at": timezone.now() + timedelta(days=3)}, "starts on"),
        ({"budget": Decimal("5.00")}, "budget is spent"),
    ],
)
def test_a_campaign_that_is_not_running_issues_nothing_and_says_why(fields, reason):
    bought(UserFactory(), "Fruit")
    campaign = CouponCampaignFactory(**fields)
    if reason == "budget is spent":
        CouponCampaign.objects.filter(pk=campaign.pk).update(spent=Decimal("5.00"))
        campaign.refresh_from_db()

    result = coupon_issuing.issue(campaign)

    assert reason in result.not_issuing
    assert not Coupon.objects.exists()


def test_opted_out_shoppers_and_shoppers_without_an_account_get_no_coupon():
    fan, private = UserFactory(), UserFactory()
    bought(fan, "Fruit")
    privacy.opt_out(user=private)
    bought(private, "Fruit")  # e.g. history imported after the shopper opted out
    Event.objects.create(kind="purchase", user_id="legacy-customer-17", product_id="1", category="Fruit")

    assert coupon_issuing.eligible_shoppers(CouponCampaignFactory()) == [fan.pk]


def test_the_holdout_draw_is_deterministic_and_near_its_share():
    campaign = CouponCampaign(pk=7, holdout_share=Decimal("0.20"))
    other = CouponCampaign(pk=8, holdout_share=Decimal("0.20"))

    held = {user for user in range(10_000) if coupon_issuing.in_holdout(campaign, user)}

    assert 0.18 < len(held) / 10_000 < 0.22
    assert held == {user for user in range(10_000) if coupon_issuing.in_holdout(campaign, user)}
    assert held != {user for user in range(10_000) if coupon_issuing.in_holdout(other, user)}


def test_held_out_shoppers_get_no_coupon_and_their_group_is_recorded_and_kept():
    fans = [UserFactory() for _ in range(60)]
    for fan in fans:
        bought(fan, "Fruit")
    campaign = CouponCampaignFactory(holdout_share=Decimal("0.30"))

    first = coupon_issuing.issue(campaign)
    CouponCampaign.objects.filter(pk=campaign.pk).update(holdout_share=Decimal("0.90"))
    campaign.refresh_from_db()
    second = coupon_issuing.issue(campaign)

    assignments = CouponAssignment.objects.filter(campaign=campaign)
    held_out = set(assignments.filter(group="holdout").values_list("user_id", flat=True))
    with_coupon = set(Coupon.objects.filter(campaign=campaign).values_list("user_id", flat=True))
    assert first.held_out == len(held_out) == second.held_out
    assert 5 <= len(held_out) <= 30
    assert not held_out & with_coupon
    assert held_out | with_coupon == {fan.pk for fan in fans}
    assert assignments.count() == 60


# The shopper's coupon to show


def test_the_coupon_shown_is_the_best_for_the_cart_and_only_a_usable_one():
    shopper = UserFactory()
    small = CouponFactory(user=shopper, campaign=CouponCampaignFactory(discount_value=Decimal("5")))
    big = CouponFactory(user=shopper, campaign=CouponCampaignFactory(discount_value=Decimal("20"), min_cart_total=50))
    expired_at = timezone.now() - timedelta(days=1)
    CouponFactory(user=shopper, expires_at=expired_at, campaign=CouponCampaignFactory(discount_value=Decimal("90")))
    CouponFactory(user=shopper, campaign=CouponCampaignFactory(discount_value=Decimal("90"), active=False))

    assert coupons.coupon_for(shopper, Decimal("60.00")) == big
    assert coupons.coupon_for(shopper, Decimal("20.00")) == small
    assert coupons.coupon_for(UserFactory()) is None


def test_the_coupon_banner_shows_the_shoppers_code_and_what_it_saves():
    coupon = CouponFactory(campaign=CouponCampaignFactory(discount_value=Decimal("10"), min_cart_total=Decimal("15")))
    request = RequestFactory().get("/cart/")
    request.user = coupon.user

    html = render_to_string("personalization/coupon.html", personalized_coupon({"request": request}, Decimal("30.00")))

    assert coupon.code in html
    assert "10% off" in html
    assert "saves you $3.00 on this cart" in html  # the demo store's override writes its currency
    assert "On carts worth $15.00 or more." in html


def test_the_coupon_banner_is_empty_for_anonymous_shoppers_and_opted_out_ones():
    from django.contrib.auth.models import AnonymousUser

    coupon = CouponFactory()
    privacy.opt_out(user=coupon.user)
    anonymous, opted_out = RequestFactory().get("/"), RequestFactory().get("/")
    anonymous.user, opted_out.user = AnonymousUser(), coupon.user

    for request in (anonymous, opted_out):
        assert render_to_string("personalization/coupon.html", personalized_coupon({"request": request})).strip() == ""


def test_the_cart_page_shows_the_shoppers_coupon_through_the_tag(client):
    from tests.factories import ProductFactory

    coupon = CouponFactory(campaign=CouponCampaignFactory(discount_value=Decimal("10"), min_cart_total=Decimal("0")))
    client.force_login(coupon.user)
    product = ProductFactory(price=Decimal("20.00"), stock=5)
    client.post(f"/cart/add/{product.pk}/", {"quantity": 1})

    html = client.get("/cart/").content.decode()

    assert coupon.code in html and "saves you $2.00 on this cart" in html


# The campaign form


def campaign_form_errors(**fields):
    campaign = CouponCampaignFactory.build(**fields)
    with pytest.raises(ValidationError) as caught:
        campaign.full_clean()
    return caught.value.message_dict


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"discount_value": Decimal("120")}, "discount_value", "cannot be more than 100"),
        ({"ends_at": timezone.now() - timedelta(days=2)}, "ends_at", "end after it starts"),
        ({"holdout_share": Decimal("1.5")}, "holdout_share", "less than or equal to 1"),
        ({"audience": "segment"}, "segment", "Choose the segment"),
        ({"affinity_category": ""}, "affinity_category", "Name the category"),
        ({"affinity_share": None}, "affinity_share", "share of purchases"),
        ({"audience": "propensity"}, "propensity_min", "minimum or a maximum"),
        (
            {"audience": "propensity", "propensity_min": Decimal("0.8"), "propensity_max": Decimal("0.2")},
            "propensity_max",
            "cannot be below the minimum",
        ),
        ({"audience": "cart_abandonment"}, "abandoned_hours", "hours a cart must be idle"),
    ],
)
def test_a_campaign_that_makes_no_sense_is_refused_with_the_field_to_fix(fields, field, message):
    errors = campaign_form_errors(**fields)

    assert message in " ".join(errors[field])


def test_a_sensible_campaign_is_accepted():
    CouponCampaignFactory.build(discount_kind="fixed", discount_value=Decimal("150")).full_clean()
