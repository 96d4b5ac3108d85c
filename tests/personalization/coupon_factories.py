"""Factories for coupon campaigns and coupons: `from tests.personalization.coupon_factories import ...`."""
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from personalization.coupons.codes import new_code
from personalization.models import Coupon, CouponCampaign
from tests.factories import UserFactory


class CouponCampaignFactory(factory.django.DjangoModelFactory):
    """A running 10%-off campaign for shoppers who favour fruit, with no holdout unless asked."""

    class Meta:
        model = CouponCampaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    discount_kind = CouponCampaign.DiscountKind.PERCENT
    discount_value = Decimal("10")
    budget = Decimal("1000.00")
    audience = CouponCampaign.Audience.CATEGORY_AFFINITY
    affinity_category = "Fruit"
    affinity_share = Decimal("0.50")
    holdout_share = Decimal("0")
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    code = factory.LazyFunction(new_code)
    campaign = factory.SubFactory(CouponCampaignFactory)
    user = factory.SubFactory(UserFactory)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
