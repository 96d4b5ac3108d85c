"""Shop owners set up coupon campaigns in the admin and issue coupons from there."""
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from personalization.models import Coupon, CouponCampaign, Event
from tests.factories import UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/personalization/couponcampaign/"
#: The add form's fields for a 10%-off campaign (name and audience to be set).
CAMPAIGN_FORM = {
    "active": "on",
    "discount_kind": "percent",
    "discount_value": "10",
    "min_cart_total": "0",
    "budget": "100",
    "per_shopper_limit": "1",
    "starts_at_0": "2030-01-01",
    "starts_at_1": "00:00:00",
    "coupon_valid_days": "14",
    "holdout_share": "0.1",
}


@pytest.fixture
def owner_client(client):
    owner = get_user_model().objects.create_superuser("owner", "owner@example.com", "a-long-pass-phrase")
    client.force_login(owner)
    return client


def issue_now(client, campaign):
    return client.post(
        CHANGELIST, {"action": "issue_coupons_now", "_selected_action": [campaign.pk]}, follow=True
    )


def test_the_campaign_list_shows_discount_budget_and_counts(owner_client):
    campaign = CouponCampaignFactory(name="Fruit lovers", discount_value=Decimal("15"), max_discount=Decimal("5.00"))
    CouponFactory(campaign=campaign)
    CouponFactory(campaign=campaign, status="redeemed", order_id="3")

    page = owner_client.get(CHANGELIST).content.decode()

    assert "Fruit lovers" in page
    assert "15% (at most 5.00)" in page
    assert '<td class="field-issued">2</td>' in page
    assert '<td class="field-redeemed">1</td>' in page


def test_the_campaign_form_explains_each_audience_and_refuses_nonsense(owner_client):
    form_page = owner_client.get(f"{CHANGELIST}add/").content.decode()
    response = owner_client.post(
        f"{CHANGELIST}add/", {**CAMPAIGN_FORM, "name": "Too generous", "discount_value": "150", "audience": "segment"}
    )

    assert "Fill in the fields of the chosen audience only" in form_page
    assert "Never exceeded." in form_page
    assert response.status_code == 200
    assert "A percentage discount cannot be more than 100." in response.content.decode()
    assert "Choose the segment this campaign is for." in response.content.decode()
    assert not CouponCampaign.objects.exists()


def test_the_campaign_form_takes_a_likely_to_redeem_audience_with_its_size(owner_client):
    fields = {**CAMPAIGN_FORM, "name": "Win back fruit", "categories": "Fruit", "audience": "likely_to_redeem"}
    form_page = owner_client.get(f"{CHANGELIST}add/").content.decode()

    without_size = owner_client.post(f"{CHANGELIST}add/", fields).content.decode()
    saved = owner_client.post(f"{CHANGELIST}add/", {**fields, "audience_size": "250"})

    assert "likely to redeem" in form_page
    assert "the likeliest first" in form_page
    assert "Give how many shoppers the campaign should reach, at least 1." in without_size
    assert saved.status_code == 302
    campaign = CouponCampaign.objects.get()
    assert (campaign.audience, campaign.audience_size, campaign.category_names) == ("likely_to_redeem", 250, ["Fruit"])


def test_issue_coupons_now_issues_and_reports_the_counts(owner_client):
    fan = UserFactory()
    Event.objects.create(kind="purchase", user_id=str(fan.pk), product_id="1", category="Fruit")
    campaign = CouponCampaignFactory(name="Fruit lovers")

    response = issue_now(owner_client, campaign)

    assert Coupon.objects.get().user == fan
    assert (
        "Fruit lovers: 1 shoppers in the audience; 1 coupons issued, 0 held out, 0 still hold an unused coupon, "
        "0 had their limit." in response.content.decode()
    )


def test_issue_coupons_now_says_why_a_campaign_cannot_issue(owner_client):
    campaign = CouponCampaignFactory(name="Paused", active=False)
    segments = CouponCampaignFactory(name="Segment 2", audience="segment", segment=2)

    paused = issue_now(owner_client, campaign).content.decode()
    no_model = issue_now(owner_client, segments).content.decode()

    assert "Paused: no coupons issued, the campaign is switched off." in paused
    assert "Segment 2: cannot find its audience: there is no active shopper autoencoder" in no_model
    assert not Coupon.objects.exists()


def test_only_staff_who_may_change_campaigns_can_issue_coupons(client):
    viewer = get_user_model().objects.create_user("viewer", password="a-long-pass-phrase", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_couponcampaign"))
    client.force_login(viewer)
    campaign = CouponCampaignFactory()
    Event.objects.create(kind="purchase", user_id=str(UserFactory().pk), product_id="1", category="Fruit")

    response = client.post(CHANGELIST, {"action": "issue_coupons_now", "_selected_action": [campaign.pk]})

    assert response.status_code in (200, 302, 403)
    assert not Coupon.objects.exists()


def test_coupons_are_read_only_in_the_admin(owner_client):
    coupon = CouponFactory()

    assert owner_client.get("/admin/personalization/coupon/").status_code == 200
    assert owner_client.get("/admin/personalization/coupon/add/").status_code == 403
    assert owner_client.post(f"/admin/personalization/coupon/{coupon.pk}/change/", {"order_id": "x"}).status_code == 403
