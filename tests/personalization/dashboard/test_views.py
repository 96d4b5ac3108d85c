"""The admin's Personalization dashboard: staff only, linked from the admin index, draws real data."""
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from personalization.dashboard import charts
from personalization.models import CouponAssignment, Event, EventKind, ModelVersion
from tests.factories import UserFactory
from tests.personalization.coupon_factories import CouponCampaignFactory

pytestmark = pytest.mark.django_db

URL = "/personalization/dashboard/"


@pytest.fixture
def staff_client(client):
    admin = get_user_model().objects.create_superuser("owner", "owner@example.com", "a-long-pass-phrase")
    client.force_login(admin)
    return client


@pytest.fixture
def history():
    for _ in range(4):
        Event.objects.create(kind=EventKind.IMPRESSION, product_id="1", user_id="7", recommendation_id="r1", data={"placement": "home-for-you"})
    Event.objects.create(kind=EventKind.CLICK, product_id="1", user_id="7", recommendation_id="r1", data={"placement": "home-for-you"})
    Event.objects.create(kind=EventKind.CART_ADD, product_id="1", user_id="7", recommendation_id="r1")
    Event.objects.create(kind=EventKind.PURCHASE, product_id="1", user_id="7", recommendation_id="r1", quantity=3, unit_price=Decimal("2.50"), order_id="9")
    campaign = CouponCampaignFactory(name="Fruit lovers")
    for group in (CouponAssignment.Group.TREATMENT, CouponAssignment.Group.HOLDOUT):
        CouponAssignment.objects.create(campaign=campaign, user=UserFactory(), group=group, assigned_at=timezone.now() - timedelta(days=1))
    ModelVersion.objects.create(kind="next_basket", number=1, artifact="a.pt", metrics={"recall@10": 0.42})


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_shoppers_who_are_not_staff_are_sent_to_the_admin_login(client):
    client.force_login(UserFactory())

    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_index_links_to_the_dashboard(staff_client):
    response = staff_client.get("/admin/")

    assert f'href="{URL}"' in response.content.decode()


def test_the_dashboard_renders_every_chart_with_its_data(staff_client, history):
    response = staff_client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    for key in charts.CHARTS:  # django-admin-charts' time series, created by migrate
        assert f'id="chart_container_{key}"' in page
    for svg in ("pd-placements", "pd-ctr", "pd-conversion", "pd-recall"):
        assert f'id="{svg}"' in page
    assert "/static/personalization/vendor/nvd3-1.8.6/nv.d3.min.js" in page
    assert "unpkg.com" not in page and "cdn" not in page.lower()
    data = json.loads(json.dumps(response.context["data"]))  # what the page embeds
    assert data["placements"]["series"][0]["values"] == [{"x": "Home: picked for you", "y": 4}]
    assert data["placements"]["ctr"][0]["values"] == [{"x": "Home: picked for you", "y": 25.0}]
    assert [s["values"][0]["y"] for s in data["conversion"]] == [0.0, 0.0]
    assert data["recall"][0]["values"][0]["y"] == 0.42
    assert response.context["attributed"] == {"cart_adds": 1, "purchases": 1, "revenue": Decimal("7.50")}


def test_migrate_creates_the_charts_once_and_keeps_the_owners_changes():
    from admin_tools_stats.models import DashboardStats

    DashboardStats.objects.filter(graph_key="personalization_coupons_issued").update(default_chart_type="lineChart")
    DashboardStats.objects.filter(graph_key="personalization_coupons_redeemed").delete()

    call_command("migrate", verbosity=0)

    assert DashboardStats.objects.filter(graph_key__in=charts.CHARTS).count() == len(charts.CHARTS)
    assert DashboardStats.objects.get(graph_key="personalization_coupons_issued").default_chart_type == "lineChart"


def test_django_admin_charts_computes_the_attributed_revenue(staff_client, history):
    response = staff_client.get(
        "/admin_tools_stats/chart_data/personalization_attributed_revenue/",
        {"time_since": (timezone.now() - timedelta(days=2)).date().isoformat(), "time_until": timezone.now().date().isoformat(),
         "select_box_interval": "days", "select_box_chart_type": "discreteBarChart"},
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "loadChartScript" in body and "7.5" in body


def test_django_admin_charts_divides_events_by_kind(staff_client, history):
    from admin_tools_stats.models import DashboardStats

    chart = DashboardStats.objects.get(graph_key="personalization_events_by_kind")
    response = staff_client.get(
        "/admin_tools_stats/chart_data/personalization_events_by_kind/",
        {"time_since": (timezone.now() - timedelta(days=2)).date().isoformat(), "time_until": timezone.now().date().isoformat(),
         "select_box_interval": "days", "select_box_chart_type": "multiBarChart",
         "select_box_multiple_series": str(chart.default_multiseries_criteria_id)},
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "impression" in body and "purchase" in body
