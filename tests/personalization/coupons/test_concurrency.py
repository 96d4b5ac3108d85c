"""Redemptions at the same moment: one use per code, and a budget that holds, on PostgreSQL.

Each thread has its own database connection (Django's are per thread) and its own transaction;
a barrier releases them together. SQLite serialises every write, so the race cannot happen there.
"""
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection, connections

from personalization.coupons import codes as coupons
from personalization.models import Coupon, CouponCampaign
from tests.factories import UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises writes, so there is no race to test",
    ),
]

ATTEMPTS = 100
# Connections at once: PostgreSQL allows 100 by default, shared with whatever else runs.
THREADS = 25


def race(attempts, redeem_one):
    """Runs redeem_one(i) for i in range(attempts) on THREADS threads started together; returns the outcomes."""
    barrier = threading.Barrier(min(THREADS, attempts))
    started = threading.local()

    def attempt(i):
        if not getattr(started, "done", False):
            barrier.wait()
            started.done = True
        try:
            return redeem_one(i)
        except coupons.CouponError as error:
            return error.code
        finally:
            close_old_connections()

    try:
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            return list(pool.map(attempt, range(attempts)))
    finally:
        connections.close_all()


def test_a_hundred_simultaneous_redemptions_of_one_code_give_exactly_one_success():
    coupon = CouponFactory(campaign=CouponCampaignFactory(discount_kind="fixed", discount_value=Decimal("5.00")))

    outcomes = race(ATTEMPTS, lambda i: coupons.redeem(coupon.code, coupon.user, f"order-{i}", Decimal("20.00")))

    successes = [outcome for outcome in outcomes if isinstance(outcome, coupons.Discount)]
    assert len(successes) == 1
    assert set(outcomes) - set(successes) == {"used"}
    coupon.refresh_from_db()
    assert coupon.status == "redeemed"
    assert CouponCampaign.objects.get().spent == Decimal("5.00")


def test_simultaneous_redemptions_of_many_coupons_never_exceed_the_budget():
    campaign = CouponCampaignFactory(discount_kind="fixed", discount_value=Decimal("10.00"), budget=Decimal("55.00"))
    held = [CouponFactory(campaign=campaign, user=UserFactory()) for _ in range(40)]

    outcomes = race(len(held), lambda i: coupons.redeem(held[i].code, held[i].user, f"order-{i}", Decimal("30.00")))

    campaign.refresh_from_db()
    assert campaign.spent == Decimal("50.00")
    assert sum(isinstance(outcome, coupons.Discount) for outcome in outcomes) == 5
    assert outcomes.count("budget_spent") == 35
    assert Coupon.objects.filter(status="redeemed").count() == 5
