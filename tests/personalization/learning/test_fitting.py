"""The best next-basket model serves: every servable algorithm (the CNN, TIFU-KNN, personal
frequency) and the active version are judged on the same held-out baskets of one prepared data
object, the winner is published and activated, and pages and the API serve it with explanations."""
import random
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone

from personalization import registry
from personalization.capture.events import Shopper
from personalization.learning import fitting, training
from personalization.ml import evaluate, propensity_evaluation
from personalization.ml.baselines import PersonalFrequency, TifuKnn
from personalization.ml.next_basket import NextBasketCNN
from personalization.models import Event, ModelKind, Placement
from personalization.serving import ranking
from tests.factories import CategoryFactory, ProductFactory
from tests.personalization.stores import purchase

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]

BASELINES = {"personal_frequency", "tifu_knn"}


@pytest.fixture(autouse=True)
def no_precompute(settings):
    """Nothing is queued for precomputing here (test_tasks and test_training check that)."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PRECOMPUTE_ACTIVE_DAYS": 0}


def store_of(baskets_by_shopper, products):
    """Users, products and purchase events: baskets_by_shopper[n] is shopper n's orders, oldest
    first, as lists of product numbers; orders are a week apart and end a week ago."""
    from django.contrib.auth import get_user_model

    shelf = CategoryFactory(name="Pantry", slug="pantry")
    made = [ProductFactory(title=f"Product {n}", category=shelf, price="2.00", stock=50) for n in range(products)]
    users, events = [], []
    for n, baskets in enumerate(baskets_by_shopper):
        user = get_user_model().objects.create_user(f"shopper{n}")
        users.append(user)
        start = timezone.now() - timedelta(days=7 * len(baskets) + 7)
        for number, basket in enumerate(baskets):
            ordered_at = start + timedelta(days=7 * number, hours=n)
            events += [purchase(user, made[p], f"{user.pk}-{number}", ordered_at) for p in basket]
    Event.objects.bulk_create(events)
    return users, made


def rebuying_store(shoppers=50, orders=6, products=80, staples=4, seed=1):
    """Each shopper buys their own staples, the same ones in every order: what they bought before
    predicts their next basket perfectly, so nothing can do better than personal frequency."""
    rng = random.Random(seed)
    return store_of([[sorted(own)] * orders for own in (rng.sample(range(products), staples) for _ in range(shoppers))], products)


def sequential_store(shoppers=50, orders=8, stages=5, per_stage=4, seed=2):
    """Every shopper goes round the same course of stages, one a week (stage s, then s + 1), from a
    stage of their own: what comes next follows from the last basket, not from how often or how
    recently a product was bought."""
    rng = random.Random(seed)
    histories = []
    for _ in range(shoppers):
        first = rng.randrange(stages)
        baskets = []
        for week in range(orders):
            stage = (first + week) % stages
            baskets.append(rng.sample(range(stage * per_stage, (stage + 1) * per_stage), per_stage - 1))
        histories.append(baskets)
    return store_of(histories, stages * per_stage)


def test_the_held_out_split_of_the_prepared_sequences_is_the_evaluations_split():
    from personalization.operations.synthetic import generate_catalog, generate_histories

    frame = generate_histories(generate_catalog(150, seed=4), 80, seed=4)

    ours = fitting.TrainingData(frame).split
    theirs = evaluate.leave_last_out(frame, min_baskets=fitting.MIN_BASKETS)

    assert ours.history.vocabulary == theirs.history.vocabulary
    assert list(ours.history.user_ids) == list(theirs.history.user_ids)
    assert np.array_equal(ours.history.items, theirs.history.items)
    assert np.array_equal(ours.history.basket_offsets, theirs.history.basket_offsets)

    def targets(split):  # {shopper: (known products of the held-out basket, how many unknown ones)}
        return {
            user: (sorted(target[target >= 0].tolist()), int((target < 0).sum()))
            for user, target in zip(split.history.user_ids[split.users].tolist(), split.targets)
        }

    assert targets(ours) == targets(theirs)


def test_a_run_prepares_the_purchases_once_for_every_model(monkeypatch):
    from personalization.operations.history import import_frame
    from personalization.operations.synthetic import generate_catalog, generate_histories

    import_frame(generate_histories(generate_catalog(120, seed=3), 50, seed=3))
    prepared = []
    for module in (fitting, propensity_evaluation):
        prepare = module.prepare_frame
        monkeypatch.setattr(module, "prepare_frame", lambda frame, m=module, p=prepare: prepared.append(m) or p(frame))

    runs = training.train(kinds=[ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER, ModelKind.PROPENSITY], device="cpu")

    assert all(run.status != "failed" for run in runs), [run.message for run in runs]
    # Once for every model; ml.propensity_evaluation prepares the frame it is given once more.
    assert prepared == [fitting, propensity_evaluation]


def test_on_a_store_of_re_buyers_a_baseline_wins_and_serves_pages_and_the_api_with_explanations(client):
    users, _ = rebuying_store()

    [run] = training.train(kinds=[ModelKind.NEXT_BASKET], device="cpu")

    version = run.model_version
    assert run.status == "promoted", run.message
    assert version.algorithm in BASELINES and version.is_active
    judged = {version.algorithm: version.metrics["ndcg@10"], **{a: m["ndcg@10"] for a, m in version.metrics["rivals"].items()}}
    assert set(judged) == BASELINES | {"next_basket_cnn"}
    assert judged[version.algorithm] == max(judged.values())
    assert version.metrics["margin"] >= 0 and version.metrics["runner_up"]
    assert version.get_algorithm_display() in run.message
    assert isinstance(registry.load_active(ModelKind.NEXT_BASKET).model, TifuKnn if version.algorithm == "tifu_knn" else PersonalFrequency)

    shopper = users[0]
    staples = set(Event.objects.filter(user_id=str(shopper.pk)).values_list("product_id", flat=True))
    for slug, strategy in (("home-buy-again", "buy_again"), ("next", "next_basket")):
        unit, _ = Placement.objects.get_or_create(slug=slug, defaults={"name": slug, "strategy": strategy, "limit": 8})
        found = ranking.recommend(unit, Shopper(user_id=shopper.pk))
        assert set(found.product_ids[: len(staples)]) == staples
        assert {item.strategy for item in found.items[: len(staples)]} == {strategy}
        assert all(item.explanation == "You have bought this 6 times" for item in found.items[: len(staples)])
        assert all(item.explanation for item in found)

    client.force_login(shopper)
    home = client.get("/").content.decode()
    assert home.count("You have bought this 6 times") >= len(staples)
    answer = client.get(reverse("personalization_api:recommendations"), {"placement": "home-buy-again"}).json()
    assert {item["product_id"] for item in answer["items"][: len(staples)]} == staples
    assert all(item["explanation"] == "You have bought this 6 times" for item in answer["items"][: len(staples)])


def test_on_a_store_with_a_weekly_course_the_cnn_wins_and_serves_next_baskets():
    users, _ = sequential_store()

    [run] = training.train(kinds=[ModelKind.NEXT_BASKET], device="cpu")

    version = run.model_version
    assert (run.status, version.algorithm) == ("promoted", "next_basket_cnn"), run.message
    assert all(version.metrics["ndcg@10"] > rival["ndcg@10"] for rival in version.metrics["rivals"].values())
    assert version.metrics["margin"] > 0
    assert isinstance(registry.load_active(ModelKind.NEXT_BASKET).model, NextBasketCNN)
    found = ranking.recommend(Placement.objects.create(slug="next", name="next", strategy="next_basket", limit=3), Shopper(user_id=users[0].pk))
    assert [item.strategy for item in found] == ["next_basket"] * 3
    assert all(item.explanation for item in found)


def test_a_retrain_judges_the_active_version_on_the_same_baskets():
    rebuying_store(shoppers=30)
    [first] = training.train(kinds=[ModelKind.NEXT_BASKET], device="cpu")
    assert first.status == "promoted", first.message

    [second] = training.train(kinds=[ModelKind.NEXT_BASKET], device="cpu")

    metrics = second.model_version.metrics
    assert metrics["active_before"]["ndcg@10"] is not None
    # The same algorithm fitted on the same purchases scores as the active version did: no better.
    if second.model_version.algorithm == first.model_version.algorithm:
        assert second.status == "kept_inactive" and "does not beat the active version's" in second.message
        assert metrics["margin"] <= 0
    assert registry.active(ModelKind.NEXT_BASKET) == (first.model_version if second.status == "kept_inactive" else second.model_version)


def test_an_algorithm_whose_checkpoint_cannot_serve_gives_way_to_the_next_best(monkeypatch):
    users, _ = rebuying_store(shoppers=30)
    for baseline in (PersonalFrequency, TifuKnn):  # their fitted state is lost on the way to the checkpoint
        monkeypatch.setattr(baseline, "state", lambda self: {})

    [run] = training.train(kinds=[ModelKind.NEXT_BASKET], device="cpu")

    version = run.model_version
    assert (run.status, version.algorithm) == ("promoted", "next_basket_cnn"), run.message
    assert version.metrics["rivals"]["personal_frequency"]["ndcg@10"] == 1.0  # the best there is, but it cannot serve
    assert version.metrics["margin"] <= 0
    again = ranking.recommend(Placement.objects.get(slug="home-buy-again"), Shopper(user_id=users[0].pk))
    assert again.items[0].strategy == "buy_again" and again.items[0].explanation == "You have bought this 6 times"
