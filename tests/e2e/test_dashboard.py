"""The admin's Personalization dashboard in a real browser: the shop owner logs in, opens it, and
every chart draws its data (SVG bars and lines) with d3/nvd3 from the static files. The page is
kept as a screenshot ($E2E_ARTIFACTS/dashboard.png). Nothing the browser asks for may leave 127.0.0.1.
"""
import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils import timezone

from personalization import charts
from personalization.models import Coupon, CouponAssignment, Event, EventKind, ModelVersion
from tests.factories import PASSWORD, UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory

default_placements = importlib.import_module("personalization.migrations.0003_placements")

#: A chart has drawn when its SVG holds data marks: nvd3 puts bars and lines in .nv-groups.
DRAWN = """() => {
  const sections = [...document.querySelectorAll('section.pd-chart')];
  return sections.length > 0 && sections.every(s => s.querySelectorAll('svg .nv-groups rect, svg .nv-groups path').length > 0);
}"""


@pytest.fixture
def owner(transactional_db, live_server):
    """A superuser, and a month of hand-made events, coupons, a campaign with a holdout and model
    versions. The live server's database is emptied after each test, so the rows migrate makes
    (placements, charts) are put back first."""
    default_placements.create_default_placements(apps, None)
    charts.create_charts()
    now = timezone.now()
    events = []
    for day in range(10):
        at = now - timedelta(days=day, hours=1)
        for placement, shown, clicked in (("home-for-you", 20 + day, 3), ("cart-completion", 8, 2)):
            data = {"placement": placement}
            events += [Event(kind=EventKind.IMPRESSION, product_id=str(i), user_id="5", recommendation_id=f"r{day}", data=data, created_at=at) for i in range(shown)]
            events += [Event(kind=EventKind.CLICK, product_id=str(i), user_id="5", recommendation_id=f"r{day}", data=data, created_at=at) for i in range(clicked)]
        events += [Event(kind=EventKind.VIEW, product_id=str(i), user_id="5", created_at=at) for i in range(12)]
        events.append(Event(kind=EventKind.CART_ADD, product_id="2", user_id="5", recommendation_id=f"r{day}", created_at=at))
        events.append(
            Event(kind=EventKind.PURCHASE, product_id="2", user_id="5", recommendation_id=f"r{day}", quantity=1 + day % 3,
                  unit_price=Decimal("4.20"), order_id=f"o{day}", created_at=at)
        )
    Event.objects.bulk_create(events)
    campaign = CouponCampaignFactory(name="Dairy lovers", holdout_share=Decimal("0.3"))
    for n in range(6):
        group = CouponAssignment.Group.HOLDOUT if n % 3 == 0 else CouponAssignment.Group.TREATMENT
        shopper = UserFactory()
        CouponAssignment.objects.create(campaign=campaign, user=shopper, group=group, assigned_at=now - timedelta(days=5))
        if n in (1, 2, 3):
            Event.objects.create(kind=EventKind.PURCHASE, product_id="3", user_id=str(shopper.pk), order_id=f"c{n}", created_at=now - timedelta(days=3))
        if group == CouponAssignment.Group.TREATMENT:
            redeemed = n % 2 == 1
            CouponFactory(
                campaign=campaign, user=shopper, issued_at=now - timedelta(days=5),
                status=Coupon.Status.REDEEMED if redeemed else Coupon.Status.ISSUED, redeemed_at=now - timedelta(days=3) if redeemed else None,
            )
    for number, (days_ago, recall) in enumerate(((9, 0.21), (6, 0.24), (2, 0.29)), start=1):
        ModelVersion.objects.create(kind="next_basket", number=number, artifact=f"v{number}.pt", metrics={"recall@10": recall},
                                    created_at=now - timedelta(days=days_ago))
        ModelVersion.objects.create(kind="autoencoder", number=number, artifact=f"a{number}.pt", metrics={"recall@10": recall / 2},
                                    created_at=now - timedelta(days=days_ago))
    return get_user_model().objects.create_superuser("owner", "owner@example.com", PASSWORD)


def test_the_shop_owner_sees_every_chart_drawn_from_real_data(owner, live_server, page, artifacts):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.click("text=Personalization dashboard")
    page.wait_for_url("**/personalization/dashboard/")

    page.wait_for_function(DRAWN, timeout=30_000)
    page.wait_for_timeout(500)  # nvd3's transitions settle before the screenshot
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)

    drawn = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('section.pd-chart')].map(s =>
            [s.dataset.chart, s.querySelectorAll('svg .nv-groups rect, svg .nv-groups path').length]))"""
    )
    assert set(drawn) == {*charts.CHARTS, "placements", "ctr", "conversion", "recall"}
    assert all(marks > 0 for marks in drawn.values()), drawn
    bars = page.locator('section[data-chart="placements"] svg .nv-groups rect.nv-bar')
    assert bars.count() == 4  # impressions and clicks of two placements
    assert page.locator('section[data-chart="recall"] svg .nv-groups path.nv-line').count() == 2
    assert page.offline.blocked == []
    assert page.offline.failures == []
    assert page.script_errors == []
