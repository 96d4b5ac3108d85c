"""The demo data comes with a running coupon campaign, and shopper1 holds one of its coupons."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from personalization.coupons import issuing as coupon_issuing
from personalization.models import Coupon, CouponAssignment, CouponCampaign
from personalization.operations.demo import DEMO_CAMPAIGN
from personalization.serving import audiences
from tests.factories import CategoryFactory, ProductFactory


@pytest.fixture
def store(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    categories = [CategoryFactory(name=name) for name in ("Pasta", "Sauces", "Dairy", "Bakery")]
    return [ProductFactory(category=categories[n % 4]) for n in range(40)]


def run_demo(*args):
    out = io.StringIO()
    call_command("personalization_demo_data", *args, stdout=out)
    return out.getvalue()


def test_demo_data_issues_coupons_to_fans_of_shopper1s_favourite_category(store):
    output = run_demo("--users", "40", "--seed", "3")

    shopper1 = get_user_model().objects.get(username="shopper1")
    campaign = CouponCampaign.objects.get(name=DEMO_CAMPAIGN)
    coupon = Coupon.objects.get(campaign=campaign, user=shopper1)
    assert f"shopper1's coupon is {coupon.code}." in output
    shares = audiences.category_shares(campaign.affinity_category)
    assert shares[str(shopper1.pk)] == max(
        audiences.category_shares(name)[str(shopper1.pk)] for name in ("Pasta", "Sauces", "Dairy", "Bakery")
    )
    groups = dict(CouponAssignment.objects.filter(campaign=campaign).values_list("user_id", "group"))
    holders = set(Coupon.objects.filter(campaign=campaign).values_list("user_id", flat=True))
    assert set(groups) == set(coupon_issuing.eligible_shoppers(campaign))
    assert holders == {pk for pk, group in groups.items() if group == "treatment"}
    assert all(shares[str(pk)] >= float(campaign.affinity_share) for pk in holders)


def test_demo_data_again_with_replace_keeps_one_demo_campaign(store):
    run_demo("--users", "10", "--seed", "1")

    run_demo("--users", "10", "--seed", "2", "--replace")

    campaign = CouponCampaign.objects.get(name=DEMO_CAMPAIGN)
    assert Coupon.objects.filter(campaign=campaign, user__username="shopper1").count() == 1
