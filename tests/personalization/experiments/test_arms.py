"""A/B experiments on placements: arms served through ranking, the API and the template tags,
exposures recorded once and kept after sign-in, outcomes per arm, the admin and the winner action."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from personalization import state
from personalization.capture.events import Shopper
from personalization.experiments import arms as experiments
from personalization.experiments import stats as experiment_stats
from personalization.models import (
    Event,
    EventKind,
    Experiment,
    ExperimentArm,
    ExperimentExposure,
    ModelVersion,
    Placement,
)
from personalization.serving import ranking
from tests.personalization.stores import build_store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]

Strategy = Placement.Strategy


@pytest.fixture
def store():
    return build_store(shoppers_per_taste=3, orders=2)


@pytest.fixture
def placement(store):
    return Placement.objects.create(slug="home-picks", name="Home picks", strategy=Strategy.POPULAR, limit=4)


@pytest.fixture
def experiment(placement):
    experiment = Experiment.objects.create(
        placement=placement, name="Fewer or none", starts_at=timezone.now() - timedelta(days=30)
    )
    ExperimentArm.objects.create(experiment=experiment, name="As it is", share=34)
    ExperimentArm.objects.create(experiment=experiment, name="Two products", share=33, limit=2)
    ExperimentArm.objects.create(experiment=experiment, name="Nothing", share=33, show_nothing=True)
    return experiment


def arms(experiment):
    return list(experiment.arms.all())


def session_in(experiment, index, skip=0):
    """A session key the hash puts in arm `index`."""
    shares = [arm.share for arm in arms(experiment)]
    found = (f"session{n:04d}" for n in range(10_000) if experiment_stats.bucket(experiment.pk, f"ssession{n:04d}", shares) == index)
    for _ in range(skip):
        next(found)
    return next(found)


def test_each_arm_is_served_and_recorded_once_per_shopper(experiment, placement):
    reference, two, nothing = (Shopper(session_key=session_in(experiment, i)) for i in range(3))

    assert len(ranking.recommend(placement, reference)) == 4
    assert len(ranking.recommend(placement, two)) == 2
    shown = ranking.recommend(placement, nothing)
    assert len(shown) == 0 and shown.placement.slug == "home-picks"
    for _ in range(3):  # sticky: the same arm again, and no second record
        assert len(ranking.recommend(placement, two)) == 2

    recorded = {e.session_key: e.arm.name for e in ExperimentExposure.objects.select_related("arm")}
    assert recorded == {
        reference.session_key: "As it is",
        two.session_key: "Two products",
        nothing.session_key: "Nothing",
    }
    placement.refresh_from_db()
    assert placement.limit == 4 and placement.active  # the placement itself is untouched


def test_a_strategy_arm_serves_its_strategy(store, placement):
    cheese = store.products["Cheese"]
    Event.objects.create(kind=EventKind.PURCHASE, product_id=str(cheese.pk), user_id="99", unit_price=Decimal("3.00"))
    experiment = Experiment.objects.create(placement=placement, name="Trending", starts_at=timezone.now() - timedelta(hours=1))
    ExperimentArm.objects.create(experiment=experiment, name="Popular", share=1)
    ExperimentArm.objects.create(experiment=experiment, name="Trending", share=99, strategy=Strategy.TRENDING)

    trending = ranking.recommend(placement, Shopper(session_key=session_in(experiment, 1)))
    popular = ranking.recommend(placement, Shopper(session_key=session_in(experiment, 0)))

    assert trending.items[0].strategy == Strategy.TRENDING and trending.items[0].product.id == str(cheese.pk)
    assert {item.strategy for item in popular} == {Strategy.POPULAR}


def test_an_arm_serves_its_model_version_and_winning_activates_it(store, placement):
    from personalization import registry
    from personalization.learning.frames import purchase_frame
    from personalization.ml import checkpoint
    from personalization.ml.baselines import PersonalFrequency
    from personalization.ml.sequences import build_sequences
    from personalization.models import ModelKind

    def publish(frame):
        sequences = build_sequences(frame)
        artifact = checkpoint.save(PersonalFrequency().fit(sequences), vocabulary=sequences.vocabulary)
        return registry.publish(ModelKind.NEXT_BASKET, artifact, algorithm="personal_frequency")

    frame = purchase_frame()
    active = registry.activate(publish(frame))
    bakers = {str(user.pk) for user in store.shoppers["bakery"]}
    kept = publish(frame[frame["user_id"].isin(bakers)])  # inactive: it knows bakery products only
    placement.strategy, placement.fallback_strategy = Strategy.NEXT_BASKET, Strategy.POPULAR
    placement.save()
    experiment = Experiment.objects.create(placement=placement, name="Kept version", starts_at=timezone.now() - timedelta(days=30))
    ExperimentArm.objects.create(experiment=experiment, name="Active", share=50)
    pinned = ExperimentArm.objects.create(experiment=experiment, name="Kept", share=50, model_version=kept)
    shares = [50, 50]
    in_arm = {
        index: next(u for u in store.shoppers["dairy"] if experiment_stats.bucket(experiment.pk, f"u{u.pk}", shares) == index)
        for index in (0, 1)
    }

    served_active = ranking.recommend(placement, Shopper(user_id=in_arm[0].pk))
    served_kept = ranking.recommend(placement, Shopper(user_id=in_arm[1].pk))

    # The active version knows the dairy shopper's Milk; the kept one knows no dairy: the fallback serves.
    assert {item.strategy for item in served_active} == {Strategy.NEXT_BASKET}
    assert store.product("Milk").title in [item.product.title for item in served_active]
    assert {item.strategy for item in served_kept} == {Strategy.POPULAR}
    assert ModelVersion.objects.get(is_active=True, kind=ModelKind.NEXT_BASKET) == active

    experiment.baseline_rate, experiment.minimum_lift = Decimal("0.5"), Decimal("0.9")  # a tiny horizon
    experiment.save()
    for n in range(experiments.needed(experiment)):
        exposure(experiment, arms(experiment)[0], f"a{n}", 8)
        exposure(experiment, pinned, f"k{n}", 8)
        Event.objects.create(
            kind=EventKind.PURCHASE, product_id="1", session_key=f"k{n}", unit_price=Decimal("2.00"), created_at=timezone.now() - timedelta(days=7)
        )
    assert experiments.apply_winner(experiment) == pinned
    assert ModelVersion.objects.get(is_active=True, kind=ModelKind.NEXT_BASKET) == kept


def test_an_arm_that_shows_nothing_pins_no_model_version(experiment):
    from django.core.exceptions import ValidationError

    arm = ExperimentArm(experiment=experiment, name="Nothing", show_nothing=True, model_version=ModelVersion.objects.create(kind="next_basket", number=1))
    with pytest.raises(ValidationError, match="model version"):
        arm.clean()


def test_no_experiment_outside_its_dates_and_none_for_opted_out_shoppers(experiment, placement):
    from personalization.capture import privacy

    shopper = Shopper(session_key=session_in(experiment, 2))
    experiment.starts_at = timezone.now() + timedelta(days=1)
    experiment.save()
    assert len(ranking.recommend(placement, shopper)) == 4

    experiment.starts_at = timezone.now() - timedelta(days=30)
    experiment.save()
    privacy.opt_out(session_key=shopper.session_key)
    assert len(ranking.recommend(placement, shopper)) == 4
    assert not ExperimentExposure.objects.exists()


def test_a_sessions_arm_is_kept_after_sign_in(experiment, placement, client):
    key = session_in(experiment, 1)
    assert len(ranking.recommend(placement, Shopper(session_key=key))) == 2
    user = get_user_model().objects.create_user("ada")
    # The same hash for the user would likely put them elsewhere; the recorded arm wins.
    experiments.merge_session([key], user)

    assert len(ranking.recommend(placement, Shopper(user_id=user.pk))) == 2
    exposure = ExperimentExposure.objects.get()
    assert exposure.user_id == str(user.pk)


def test_signing_in_through_the_store_merges_the_arm(experiment, placement, client):
    user = get_user_model().objects.create_user("grace", password="a-long-pass-phrase")
    session = client.session
    session["visited"] = True
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    client.get(reverse("personalization_api:recommendations"), {"placement": "home-picks"})
    exposure = ExperimentExposure.objects.get()
    assert exposure.user_id == ""

    client.post(reverse("login"), {"username": "grace", "password": "a-long-pass-phrase"})

    exposure.refresh_from_db()
    assert exposure.user_id == str(user.pk)


def test_the_api_and_the_template_tag_serve_the_shoppers_arm(experiment, placement):
    served = {"As it is": 4, "Two products": 2, "Nothing": 0}
    api = APIClient()
    user = get_user_model().objects.create_user("linus")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    for _ in range(2):
        body = api.get(reverse("personalization_api:recommendations"), {"placement": "home-picks"}).json()
        mine = ExperimentExposure.objects.get(user_id=str(user.pk))
        assert len(body["items"]) == served[mine.arm.name]

    request = RequestFactory().get("/")
    request.user, request.session = AnonymousUser(), SessionStore()
    request.session.create()
    html = Template('{% load personalization %}{% recommendations "home-picks" %}').render(
        Context({"request": request})
    )
    mine = ExperimentExposure.objects.get(session_key=request.session.session_key)
    assert html.count("<article") == served[mine.arm.name]


def exposure(experiment, arm, key, days_ago):
    return ExperimentExposure.objects.create(
        experiment=experiment, arm=arm, shopper_key=f"s{key}", session_key=key, first_seen=timezone.now() - timedelta(days=days_ago)
    )


def test_outcomes_count_what_exposed_shoppers_did_within_their_days(experiment, placement, store):
    reference, two, _ = arms(experiment)
    milk = store.products["Milk"]
    exposure(experiment, reference, "a", 10)
    exposure(experiment, reference, "b", 10)
    exposure(experiment, two, "c", 10)
    seen = timezone.now() - timedelta(days=10)
    Event.objects.bulk_create(
        [
            Event(kind=EventKind.CLICK, product_id=str(milk.pk), session_key="a", data={"placement": "home-picks"}, created_at=seen + timedelta(hours=1)),
            Event(kind=EventKind.CART_ADD, product_id=str(milk.pk), session_key="a", created_at=seen + timedelta(hours=2)),
            Event(kind=EventKind.PURCHASE, product_id=str(milk.pk), session_key="a", quantity=2, unit_price=Decimal("3.00"), created_at=seen + timedelta(hours=3)),
            # Too late: after the 7 days counted per shopper.
            Event(kind=EventKind.PURCHASE, product_id=str(milk.pk), session_key="b", quantity=1, unit_price=Decimal("3.00"), created_at=seen + timedelta(days=8)),
            Event(kind=EventKind.CLICK, product_id=str(milk.pk), session_key="c", data={"placement": "elsewhere"}, created_at=seen + timedelta(hours=1)),
            Event(kind=EventKind.CART_ADD, product_id=str(milk.pk), session_key="c", created_at=seen + timedelta(hours=1)),
        ]
    )

    result = experiments.outcomes(experiment)

    first, second, third = result.arms
    assert (first.exposed, len(first.matured)) == (2, 2)
    assert first.rates["click_through"].value == 0.5
    assert first.rates["add_to_cart"].value == 0.5
    assert first.rates["conversion"].value == 0.5
    assert first.revenue.value == pytest.approx(3.0)
    assert second.rates["click_through"].value == 0 and second.rates["add_to_cart"].value == 1
    assert third.exposed == 0 and third.rates["conversion"] is None
    assert result.needed == experiment_stats.shoppers_needed(Decimal("0.05"), Decimal("0.20"), 3)
    assert not result.decision.ready and result.winner is None


def test_the_winner_becomes_the_placements_configuration(experiment, placement):
    experiment.baseline_rate, experiment.minimum_lift = Decimal("0.5"), Decimal("0.9")  # a tiny horizon
    experiment.save()
    reference, two, nothing = arms(experiment)
    needed = experiments.needed(experiment)
    for n in range(needed):
        exposure(experiment, reference, f"r{n}", 8)
        exposure(experiment, nothing, f"n{n}", 8)
        exposure(experiment, two, f"t{n}", 8)
        Event.objects.create(
            kind=EventKind.PURCHASE, product_id="1", session_key=f"t{n}", unit_price=Decimal("2.00"), created_at=timezone.now() - timedelta(days=7)
        )

    winner = experiments.apply_winner(experiment)

    assert winner == two
    placement.refresh_from_db()
    assert placement.limit == 2 and placement.strategy == Strategy.POPULAR
    experiment.refresh_from_db()
    assert experiment.applied_arm == two and not experiment.is_running()


def test_no_winner_changes_nothing(experiment, placement):
    assert experiments.apply_winner(experiment) is None
    placement.refresh_from_db()
    assert placement.limit == 4


@pytest.fixture
def staff_client(client):
    owner = get_user_model().objects.create_superuser("owner", "owner@example.com", "a-long-pass-phrase")
    client.force_login(owner)
    return client


def test_the_admin_shows_the_horizon_and_the_table_per_arm(experiment, staff_client):
    reference = arms(experiment)[0]
    exposure(experiment, reference, "a", 1)

    page = staff_client.get(f"/admin/personalization/experiment/{experiment.pk}/change/").content.decode()

    needed = experiments.needed(experiment)
    assert f"Needs {needed} shoppers per arm; has 0." in page
    assert "No winner before the horizon" in page
    assert "Two products" in page and "reference" in page


def test_the_admin_refuses_an_experiment_with_one_arm(placement, staff_client):
    form = {
        "name": "Alone",
        "placement": placement.pk,
        "primary_metric": "conversion",
        "baseline_rate": "0.05",
        "minimum_lift": "0.2",
        "outcome_days": "7",
        "starts_at_0": "2030-01-01",
        "starts_at_1": "10:00:00",
        "arms-TOTAL_FORMS": "1",
        "arms-INITIAL_FORMS": "0",
        "arms-0-name": "Only",
        "arms-0-share": "50",
    }

    response = staff_client.post("/admin/personalization/experiment/add/", form)

    assert response.status_code == 200
    assert "at least two arms" in response.content.decode()
    assert not Experiment.objects.exists()


def test_the_admin_action_applies_the_winner_or_says_there_is_none(experiment, staff_client):
    response = staff_client.post(
        "/admin/personalization/experiment/",
        {"action": "apply_winner", "_selected_action": [experiment.pk]},
        follow=True,
    )

    assert "has no winner yet" in response.content.decode()


def test_overlapping_experiments_on_one_placement_are_refused(experiment, placement):
    from django.core.exceptions import ValidationError

    other = Experiment(placement=placement, name="Again", starts_at=timezone.now())
    with pytest.raises(ValidationError, match="one at a time"):
        other.full_clean()


@pytest.mark.parametrize("signed_in", [True, False])
def test_forgetting_a_shopper_erases_their_exposures_and_remembered_arms(
    experiment, placement, signed_in, django_capture_on_commit_callbacks
):
    from personalization.cache import cache
    from personalization.capture import privacy

    key = session_in(experiment, 1)
    ranking.recommend(placement, Shopper(session_key=key))
    other = Shopper(session_key=session_in(experiment, 0))
    ranking.recommend(placement, other)
    if signed_in:
        user = get_user_model().objects.create_user("erased")
        experiments.merge_session([key], user)
        shopper, forget = Shopper(user_id=str(user.pk)), {"user": user}
    else:
        shopper, forget = Shopper(session_key=key), {"session_key": key}
    arm_key = state.arm_key(experiment.pk, shopper)
    assert cache.get(arm_key) is not None

    with django_capture_on_commit_callbacks(execute=True):
        privacy.forget(**forget)

    assert list(ExperimentExposure.objects.values_list("session_key", flat=True)) == [other.session_key]
    assert cache.get(arm_key) is None
    assert cache.get(state.arm_key(experiment.pk, other)) is not None


def test_served_by_slug_the_experiment_and_opt_out_come_with_the_shoppers_state(experiment, placement, monkeypatch):
    from personalization.cache import cache

    shopper = Shopper(session_key=session_in(experiment, 1))
    first = ranking.recommend(placement.slug, shopper)  # caches the experiment, the arm, the shortlist
    gets, get = [], cache.get
    monkeypatch.setattr(cache, "get", lambda key, *args, **kwargs: gets.append(key) or get(key, *args, **kwargs))

    again = ranking.recommend(placement.slug, shopper)

    assert gets == [state.arm_key(experiment.pk, shopper)]  # the arm alone: its experiment is known only now
    assert [item.product for item in again.items] == [item.product for item in first.items]
