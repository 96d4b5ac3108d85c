"""The dashboard's experiments: each running or recently stopped experiment with its arms' decisive
rate (95% interval), the difference to the reference with its p-value, the horizon, the decision and
a link to its admin page; the chart's data carries the intervals."""
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from personalization.dashboard import analytics
from personalization.experiments import arms as experiments
from personalization.models import Event, EventKind, Experiment, ExperimentArm, ExperimentExposure, Placement

pytestmark = pytest.mark.django_db

URL = "/personalization/dashboard/"
NOW = timezone.now()


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("owner", "owner@example.com", "a-long-pass-phrase"))
    return client


def make_experiment(name, placement, starts_days_ago, stops_days_ago=None, baseline="0.05", lift="0.20"):
    experiment = Experiment.objects.create(
        placement=placement,
        name=name,
        baseline_rate=baseline,
        minimum_lift=lift,
        starts_at=NOW - timedelta(days=starts_days_ago),
        stops_at=None if stops_days_ago is None else NOW - timedelta(days=stops_days_ago),
    )
    ExperimentArm.objects.create(experiment=experiment, name="As it is", share=50)
    ExperimentArm.objects.create(experiment=experiment, name="Six products", share=50, limit=6)
    return experiment


def expose(experiment, arm, count, buyers, prefix):
    """`count` shoppers of `arm` first seen ten days ago (their 7 days counted have passed), the first
    `buyers` of them bought something two days later."""
    seen = NOW - timedelta(days=10)
    for n in range(count):
        key = f"{prefix}{n}"
        ExperimentExposure.objects.create(experiment=experiment, arm=arm, shopper_key=f"s{key}", session_key=key, first_seen=seen)
        if n < buyers:
            Event.objects.create(kind=EventKind.PURCHASE, product_id="1", session_key=key, quantity=1, unit_price=2, created_at=seen + timedelta(days=2))


@pytest.fixture
def decided():
    """A running experiment at its horizon whose second arm converts far better."""
    placement = Placement.objects.create(slug="exp-a", name="Home picks", strategy="popular", limit=4)
    experiment = make_experiment("More products", placement, starts_days_ago=12, baseline="0.30", lift="1.5")
    needed = experiments.needed(experiment)
    reference, six = experiment.arms.all()
    expose(experiment, reference, needed, needed // 5, "r")
    expose(experiment, six, needed, needed - 1, "t")
    return experiment


def test_a_decided_experiment_shows_its_arms_intervals_difference_and_winner(staff_client, decided):
    response = staff_client.get(URL)

    page = response.content.decode()
    section = re.search(rf'<section[^>]*data-experiment="{decided.pk}">(.*?)</section>', page, re.DOTALL).group(1)
    assert f'href="{reverse("admin:personalization_experiment_change", args=[decided.pk])}"' in section
    assert "Winner: Six products." in section
    assert f'id="pd-experiment-{decided.pk}"' in section
    rows = re.findall(r"<tr data-arm[^>]*>(.*?)</tr>", section, re.DOTALL)
    cells = [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)] for row in rows]
    needed = experiments.needed(decided)
    assert cells[0][1] == f"{needed} ({needed})" and cells[0][3] == "reference"
    result = experiments.outcomes(decided)
    rate = result.arms[0].rates["conversion"]
    assert cells[0][2] == f"{100 * rate.value:.2f}% ({100 * rate.low:.2f}% to {100 * rate.high:.2f}%)"
    difference = result.arms[1].differences["conversion"]
    assert cells[1][3].startswith(f"{100 * difference.estimate.value:.2f} (") and "p = 0.000" in cells[1][3]
    assert "winner" in cells[1][0]

    data = json.loads(json.dumps(response.context["data"]))["experiments"]
    assert [chart["id"] for chart in data] == [decided.pk]
    bars = data[0]["series"][0]["values"]
    assert [bar["x"] for bar in bars] == ["As it is", "Six products"]
    assert bars[0]["reference"] and not bars[1]["reference"]
    assert bars[0]["low"] < bars[0]["y"] < bars[0]["high"] and bars[1]["y"] == round(100 * (needed - 1) / needed, 2)
    assert data[0]["series"][0]["key"] == str(Experiment.Metric.CONVERSION.label)


def test_only_running_and_recently_stopped_experiments_are_shown(staff_client):
    placements = [Placement.objects.create(slug=f"exp-{n}", name=f"Slot {n}", strategy="popular", limit=4) for n in range(4)]
    running = make_experiment("Running", placements[0], starts_days_ago=3)
    recent = make_experiment("Stopped last week", placements[1], starts_days_ago=20, stops_days_ago=7)
    make_experiment("Stopped long ago", placements[2], starts_days_ago=90, stops_days_ago=60)
    make_experiment("Not started", placements[3], starts_days_ago=-2)

    summaries = analytics.experiment_results(NOW - timedelta(days=30), NOW)

    assert [s.experiment_id for s in summaries] == [running.pk, recent.pk]
    assert summaries[0].running and not summaries[1].running
    page = staff_client.get(URL).content.decode()
    assert "Experiment: Running" in page and "Experiment: Stopped last week" in page
    assert "Stopped long ago" not in page and "Not started" not in page
    # No shopper exposed yet: no chart, a sentence instead; the horizon is said up front.
    assert "No shopper was exposed yet." in page and f'id="pd-experiment-{running.pk}"' not in page
    assert f"Horizon: {experiments.needed(running)} counted shoppers per arm." in page.replace(",", "")
    assert "No decision before the horizon" in page


def test_without_experiments_the_dashboard_says_so(staff_client):
    page = staff_client.get(URL).content.decode()

    assert 'data-chart="experiments"' in page and "No experiment ran in the last 30 days." in page
