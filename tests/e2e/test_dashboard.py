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

    # Every chart draws marks one can see: bars, lines or points of a non-zero size.
    visible = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('section.pd-chart')].map(s =>
            [s.dataset.chart, [...s.querySelectorAll('svg .nv-groups rect, svg .nv-groups path, svg .nv-groups circle')]
              .filter(m => { const b = m.getBoundingClientRect(); return b.width > 0 && b.height > 0
                             && getComputedStyle(m).opacity !== '0' && getComputedStyle(m).visibility !== 'hidden'; }).length]))"""
    )
    assert all(marks > 0 for marks in visible.values()), visible
    # The recall chart's points show without the pointer on them (one model version is one point).
    points = page.locator('section[data-chart="recall"] svg .nv-groups .nv-point')
    assert points.count() == 6
    assert points.first.evaluate("p => Number(getComputedStyle(p).fillOpacity)") > 0

    # The daily charts' day labels: some, none overlapping another, none blank or repeated.
    labels = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('section.pd-admin-chart')].map(s =>
            [s.dataset.chart, [...s.querySelectorAll('.nv-x .tick text')].map(t => {
              const b = t.getBoundingClientRect(); return [t.textContent, b.left, b.right, b.top, b.bottom]; })]))"""
    )
    assert set(labels) == set(charts.CHARTS)
    for key, ticks in labels.items():
        assert len(ticks) >= 4, (key, ticks)
        assert all(text for text, *_box in ticks), (key, ticks)
        assert len({text for text, *_box in ticks}) == len(ticks), (key, ticks)
        for i, (a_text, a_left, a_right, a_top, a_bottom) in enumerate(ticks):
            for b_text, b_left, b_right, b_top, b_bottom in ticks[i + 1:]:
                overlap = a_left < b_right and b_left < a_right and a_top < b_bottom and b_top < a_bottom
                assert not overlap, (key, a_text, b_text)

    # Counts are whole numbers, once each; money carries the currency; no series is named "None".
    y_ticks = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('section.pd-admin-chart')].map(s =>
            [s.dataset.chart, [...s.querySelectorAll('.nv-y .tick text')].map(t => t.textContent)]))"""
    )
    for key, ticks in y_ticks.items():
        assert ticks, key
        if key == "personalization_attributed_revenue":
            assert all(text.startswith("$") for text in ticks), ticks
        else:
            assert all(text.replace(",", "").isdigit() for text in ticks), (key, ticks)
            assert len(set(ticks)) == len(ticks), (key, ticks)
    legend = page.locator('section[data-chart="personalization_events_by_kind"] .nv-legend-text').all_text_contents()
    assert "None" not in legend and "impressions" in legend, legend
    assert not any(text.endswith("...") for text in legend), legend
    # The legend sits above the bars, not over them.
    legend_bottom = page.evaluate(
        """() => document.querySelector('section[data-chart="personalization_events_by_kind"] .nv-legendWrap').getBoundingClientRect().bottom"""
    )
    bars_top = page.evaluate(
        """() => Math.min(...[...document.querySelectorAll('section[data-chart="personalization_events_by_kind"] .nv-groups rect')]
            .map(r => r.getBoundingClientRect()).filter(b => b.height > 0).map(b => b.top))"""
    )
    assert legend_bottom <= bars_top, (legend_bottom, bars_top)
    # The totals: no list bullets, revenue in the shop's currency.
    assert page.locator(".pd-totals li").first.evaluate("li => getComputedStyle(li).listStyleType") == "none"
    assert page.locator(".pd-totals li", has_text="Revenue").locator("strong").inner_text().startswith("$")

    assert page.offline.blocked == []
    assert page.offline.failures == []
    assert page.script_errors == []
