"""Forgetting a shopper erases them everywhere: events, coupons and assignments in the database,
their history, shortlists (precomputed ones included) and remembered clicks in the cache; the next
answer shows nothing personal."""
from decimal import Decimal

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from personalization import state
from personalization.cache import cache
from personalization.capture import attribution, events
from personalization.models import Coupon, CouponAssignment, Event, Placement
from personalization.serving import precompute, ranking
from personalization.serving.explanations import POPULAR, TRENDING
from tests.personalization.coupon_factories import CouponFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]

NOTHING_PERSONAL = {POPULAR, TRENDING}


def reasons(client):
    body = client.get("/api/personalization/recommendations/", {"placement": "home-for-you"}).json()
    return {item["reason"] for item in body["items"]}


def cached_about(shopper, token):
    keys = [state.clicks_key(shopper.user_id, ""), state.history_key(shopper, token),
            *ranking.precomputed_keys(shopper)]  # fmt: skip
    return {key for key, value in cache.get_many(keys).items() if value is not None}


@pytest.mark.parametrize("erase", ["forget command", "opt out"])
def test_forgetting_a_shopper_leaves_nothing_of_theirs_in_the_database_or_the_cache(
    trained, erase, django_capture_on_commit_callbacks
):
    Placement.objects.filter(slug="home-for-you").update(strategy=Placement.Strategy.BUY_AGAIN)
    user = trained.shoppers["dairy"][0]
    shopper = events.Shopper(user_id=str(user.pk))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    attribution.remember_click(str(user.pk), "", trained.product("Milk").pk, "c" * 32)
    precompute.warm_range(user.pk, user.pk)
    assert reasons(client) - NOTHING_PERSONAL  # "buy again" before
    token = state.cached_version(shopper)
    assert cached_about(shopper, token)
    used = CouponFactory(user=user)
    Coupon.objects.filter(pk=used.pk).update(status=Coupon.Status.REDEEMED, order_id="7", discount=Decimal("1.00"))
    unused = CouponFactory(user=user)
    CouponAssignment.objects.create(campaign=unused.campaign, user=user, group="treatment")

    with django_capture_on_commit_callbacks(execute=True):
        if erase == "forget command":
            call_command("personalization_forget", "--user", str(user.pk))
        else:
            from personalization.capture import privacy

            privacy.opt_out(user=user)

    assert not Event.objects.filter(user_id=str(user.pk)).exists()
    assert not Coupon.objects.filter(user=user).exists() and not CouponAssignment.objects.filter(user=user).exists()
    assert Coupon.objects.get(pk=used.pk).user is None  # the redeemed one stays for the books, anonymous
    assert cached_about(shopper, token) == set()
    assert reasons(client) <= NOTHING_PERSONAL
