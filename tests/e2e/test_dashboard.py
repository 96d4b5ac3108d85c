"""The admin's Personalization dashboard in a real browser: the shop owner logs in, opens it, and
every chart draws its data (SVG bars and lines) with d3/nvd3 from the static files: the daily
series, CTR per placement, coupon campaigns, promotions, each experiment's arms with their 95%
intervals, and recall per model version. Axis labels must not overlap, counts have whole-number
ticks and rates percent ticks, each once. The page is kept as screenshots ($E2E_ARTIFACTS:
dashboard.png, dashboard-phone.png, experiment-admin.png). Nothing the browser asks for may leave 127.0.0.1.
"""
import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils import timezone

from personalization.dashboard import charts
from personalization.models import (
    Coupon,
    CouponAssignment,
    Event,
    EventKind,
    Experiment,
    ExperimentArm,
    ExperimentExposure,
    ModelVersion,
    Placement,
    Promotion,
    PromotionExposure,
)
from tests.factories import PASSWORD, UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory, CouponFactory

default_placements = importlib.import_module("personalization.migrations.0003_placements")

#: A chart has drawn when its SVG holds data marks: nvd3 puts bars and lines in .nv-groups.
DRAWN = """() => {
  const sections = [...document.querySelectorAll('section.pd-chart')];
  return sections.length > 0 && sections.every(s => s.querySelectorAll('svg .nv-groups rect, svg .nv-groups path').length > 0);
}"""
#: Every chart's axis labels: {chart: {"x": [[text, left, right, top, bottom]], "y": [...]}}.
AXIS_LABELS = """() => Object.fromEntries([...document.querySelectorAll('section.pd-chart')].map(s => [s.dataset.chart,
  Object.fromEntries(['x', 'y'].map(axis => [axis, [...s.querySelectorAll(`svg .nv-${axis}.nv-axis .tick text`)]
    .filter(t => getComputedStyle(t).opacity !== '0' && t.getBoundingClientRect().width > 0)
    .map(t => { const b = t.getBoundingClientRect(), lines = [...t.querySelectorAll('tspan')].map(l => l.textContent);
                return [lines.length ? lines.join(' ') : t.textContent, b.left, b.right, b.top, b.bottom]; })]))]))"""


def assert_no_overlap(key, labels):
    for i, (a_text, a_left, a_right, a_top, a_bottom) in enumerate(labels):
        for b_text, b_left, b_right, b_top, b_bottom in labels[i + 1:]:
            overlap = a_left < b_right and b_left < a_right and a_top < b_bottom and b_top < a_bottom
            assert not overlap, (key, a_text, b_text)


def add_promotion_and_experiment(now):
    """A promotion shown to 12 shoppers (3 clicked, 4 bought) with 4 held out (1 bought), and an
    experiment of three arms on the home page's placement with 30 to 34 shoppers each."""
    promotion = Promotion.objects.create(
        name="Apple week", slot="home-banner", headline="Apple week", product_id="2", holdout_share=Decimal("0.25"),
        starts_at=now - timedelta(days=8),
    )
    events = []
    for n in range(16):
        group = PromotionExposure.Group.HOLDOUT if n % 4 == 0 else PromotionExposure.Group.TREATMENT
        seen = now - timedelta(days=6, hours=n)
        PromotionExposure.objects.create(promotion=promotion, shopper_key=f"spromo{n}", session_key=f"promo{n}", group=group, first_seen=seen)
        data = {"promotion": promotion.pk, "slot": "home-banner"}
        if group == PromotionExposure.Group.TREATMENT:
            events.append(Event(kind=EventKind.IMPRESSION, product_id="2", session_key=f"promo{n}", data=data, created_at=seen))
            if n in (1, 2, 3):
                events.append(Event(kind=EventKind.CLICK, product_id="2", session_key=f"promo{n}", data=data, created_at=seen))
        if n in (0, 1, 2, 5, 6):
            events.append(Event(kind=EventKind.PURCHASE, product_id="2", session_key=f"promo{n}", quantity=2, unit_price=Decimal("3.10"),
                                order_id=f"p{n}", created_at=seen + timedelta(days=1)))
    experiment = Experiment.objects.create(
        placement=Placement.objects.get(slug="home-for-you"), name="How many products", starts_at=now - timedelta(days=20),
        primary_metric=Experiment.Metric.CONVERSION, baseline_rate=Decimal("0.2"), minimum_lift=Decimal("0.5"),
    )
    arms = [
        ExperimentArm.objects.create(experiment=experiment, name="As configured", share=34),
        ExperimentArm.objects.create(experiment=experiment, name="Twelve products", share=33, limit=12),
        ExperimentArm.objects.create(experiment=experiment, name="No recommendations", share=33, show_nothing=True),
    ]
    for index, (arm, shoppers, buyers) in enumerate(zip(arms, (34, 32, 30), (7, 11, 3))):
        for n in range(shoppers):
            key = f"exp{index}-{n}"
            seen = now - timedelta(days=12, hours=n)
            ExperimentExposure.objects.create(experiment=experiment, arm=arm, shopper_key=f"s{key}", session_key=key, first_seen=seen)
            if n < buyers:
                events.append(Event(kind=EventKind.PURCHASE, product_id="3", session_key=key, quantity=1, unit_price=Decimal("2.00"),
                                    order_id=f"x{key}", created_at=seen + timedelta(days=2)))
    Event.objects.bulk_create(events)
    return promotion, experiment


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
    owner = get_user_model().objects.create_superuser("owner", "owner@example.com", PASSWORD)
    owner.promotion, owner.experiment = add_promotion_and_experiment(now)
    return owner


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
    experiment_chart = f"experiment-{owner.experiment.pk}"
    assert set(drawn) == {*charts.CHARTS, "placements", "ctr", "conversion", "promotions", experiment_chart, "recall"}
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
        assert_no_overlap(key, ticks)

    # The page's own charts: category labels (placements, campaigns, promotions, arms) apart and
    # complete; counts in whole numbers and rates in percent, each tick once, none overlapping.
    axes = page.evaluate(AXIS_LABELS)
    own = {"placements": 2, "ctr": 2, "conversion": 1, "promotions": 1, experiment_chart: 3}
    for key, categories in own.items():
        x_labels, y_labels = axes[key]["x"], axes[key]["y"]
        assert len(x_labels) == categories and all(text.strip() for text, *_box in x_labels), (key, x_labels)
        assert_no_overlap(key, x_labels)
        assert_no_overlap(key, y_labels)
        y_texts = [text for text, *_box in y_labels]
        assert len(y_texts) >= 3 and len(set(y_texts)) == len(y_texts), (key, y_texts)
        if key == "placements":
            assert all(text.replace(",", "").isdigit() for text in y_texts), (key, y_texts)
        else:
            assert all(text.endswith("%") for text in y_texts), (key, y_texts)
    arm_labels = [text for text, *_box in axes[experiment_chart]["x"]]
    assert arm_labels == ["As configured", "Twelve products", "No recommendations"], arm_labels

    # The promotions chart: shown against held out, in two colours named by the legend; its table row.
    promotions = page.locator('section[data-chart="promotions"]')
    assert promotions.locator("svg .nv-groups rect.nv-bar").count() == 2
    assert promotions.locator(".nv-legend-text").all_text_contents() == ["Shown it", "Held out"]
    fills = promotions.locator("svg .nv-groups .nv-group").evaluate_all("gs => gs.map(g => getComputedStyle(g).fill)")
    assert len(set(fills)) == 2, fills
    row = promotions.locator(f'tr[data-promotion="{owner.promotion.pk}"] td').all_inner_texts()
    assert row[0].startswith("Apple week") and row[1] == "12" and row[2].startswith("3 (25.00%)"), row
    assert row[3] == "$24.80" and row[4] == "4 / 12" and row[5] == "1 / 4", row

    # The experiment: a bar per arm, the reference grey, a 95% interval over each bar, its table,
    # its decision and a link to its admin page.
    experiment = page.locator(f'section[data-experiment="{owner.experiment.pk}"]')
    bars_of_arms = experiment.locator("svg .nv-groups rect")
    assert bars_of_arms.count() == 3
    colours = bars_of_arms.evaluate_all("rs => rs.map(r => getComputedStyle(r).fill)")
    assert colours[0] != colours[1] and colours[1] == colours[2], colours
    intervals = experiment.evaluate(
        """s => [...s.querySelectorAll('g.pd-interval')].map(g => {
              const span = g.querySelector('.pd-interval-span').getBoundingClientRect();
              return {top: span.top, bottom: span.bottom, x: span.left}; })"""
    )
    bar_boxes = bars_of_arms.evaluate_all("rs => rs.map(r => { const b = r.getBoundingClientRect(); return {top: b.top, left: b.left, right: b.right}; })")
    assert len(intervals) == 3, intervals
    for interval, bar in zip(intervals, bar_boxes):
        assert interval["top"] < bar["top"] < interval["bottom"], (interval, bar)  # the rate lies inside its interval
        assert bar["left"] < interval["x"] < bar["right"], (interval, bar)
    rows = [r.locator("td").all_inner_texts() for r in experiment.locator("tbody tr").all()]
    assert [r[1] for r in rows] == ["34 (34)", "32 (32)", "30 (30)"], rows
    assert rows[0][3] == "reference" and "p = " in rows[1][3] and "p = " in rows[2][3], rows
    assert "No decision before the horizon" in experiment.locator(".pd-verdict").inner_text()
    experiment.screenshot(path=str(artifacts / "dashboard-experiment.png"))

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

    # The experiment's title leads to its admin page.
    with page.expect_navigation():
        experiment.locator("h2 a").click()
    assert page.url.endswith(f"/admin/personalization/experiment/{owner.experiment.pk}/change/")
    assert "Needs" in page.locator(".field-horizon").inner_text()
    page.screenshot(path=str(artifacts / "experiment-admin.png"), full_page=True)

    # On a phone's width the charts stack and their labels still do not overlap.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/personalization/dashboard/")
    page.wait_for_function(DRAWN, timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "dashboard-phone.png"), full_page=True)
    for key, found in page.evaluate(AXIS_LABELS).items():
        assert_no_overlap(key, found["x"])
        assert_no_overlap(key, found["y"])
    widths = page.evaluate("""() => ({page: document.documentElement.scrollWidth,
        charts: Math.max(...[...document.querySelectorAll('section.pd-chart')].map(s => s.getBoundingClientRect().right))})""")
    assert widths["page"] <= 391 and widths["charts"] <= 391, f"the dashboard scrolls sideways on a phone: {widths}"
    assert page.script_errors == []
