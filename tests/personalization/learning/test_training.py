"""Training runs: tiny data promotes nothing; the gate needs the baseline and the active version beaten."""
import pytest

from personalization import registry
from personalization.learning import fitting, training
from personalization.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_with_no_purchases_every_run_fails_with_a_clear_message_and_nothing_is_published():
    runs = training.train()

    assert [run.status for run in runs] == ["failed"] * 3
    assert all(run.message == "not enough data: there are no purchases to learn from yet" for run in runs)
    assert ModelVersion.objects.count() == 0


def test_tiny_data_says_what_is_missing(django_capture_on_commit_callbacks):
    from personalization.models import Event

    Event.objects.create(kind="purchase", user_id="1", order_id="A", product_id="9")

    [run] = training.train(kinds=["next_basket"])

    assert run.status == TrainingRun.Status.FAILED
    assert "no shopper has 3 orders or more" in run.message
    assert registry.active("next_basket") is None


def outcome(new, baseline=None, active=None, rivals=None, versus=None, algorithm="autoencoder"):
    return fitting.Outcome(
        b"", algorithm, {"ndcg@10": new}, "ndcg@10", rivals=rivals or {},
        baseline=None if baseline is None else {"ndcg@10": baseline},
        active=None if active is None else {"ndcg@10": active, "shoppers": 40}, versus=versus,
    )  # fmt: skip


@pytest.mark.parametrize(
    "new, baseline, active, promoted",
    [(0.5, 0.4, None, True), (0.5, 0.4, 0.45, True), (0.4, 0.4, None, False), (0.5, 0.4, 0.5, False), (0.3, 0.4, 0.1, False)],
)
def test_a_version_is_promoted_only_when_it_beats_the_baseline_and_the_active_version(new, baseline, active, promoted):
    promote, reason = training.decide(outcome(new, baseline, active))

    assert promote is promoted
    assert reason.startswith("promoted" if promoted else "kept inactive")


def test_the_best_of_the_next_basket_algorithms_needs_only_to_beat_the_active_version():
    rivals = {"next_basket_cnn": {"ndcg@10": 0.41}, "tifu_knn": {"ndcg@10": 0.45}}  # a tie goes to the simpler one
    best = outcome(0.45, rivals=rivals, algorithm="personal_frequency")

    assert training.decide(best) == (True, "promoted: personal frequency: ndcg@10 0.4500 (next-basket CNN 0.4100, TIFU-KNN 0.4500)")
    assert training.margin(best) == ("TIFU-KNN", 0.0)
    assert training.decide(outcome(0.45, active=0.46, rivals=rivals, algorithm="personal_frequency"))[0] is False


def test_the_margin_is_over_the_runner_up_the_active_version_included():
    won = outcome(0.50, active=0.47, rivals={"tifu_knn": {"ndcg@10": 0.44}, "next_basket_cnn": {"ndcg@10": float("nan")}})
    lost = outcome(0.50, active=0.47, versus={"ndcg@10": 0.45}, rivals={"tifu_knn": {"ndcg@10": 0.44}})

    assert training.margin(won) == ("the active version", pytest.approx(0.03))
    assert training.margin(lost) == ("the active version", pytest.approx(-0.02))
    assert training.margin(outcome(0.5)) == (None, None)


def test_a_checkpoint_with_numpy_numbers_in_its_extras_loads_safely():
    import numpy as np

    from personalization.ml import checkpoint
    from personalization.ml.baselines import PersonalFrequency

    data = checkpoint.save(PersonalFrequency(), extra=fitting.plain({"segments": [{"size": np.int64(3), "share": np.float32(0.5)}]}))

    assert checkpoint.load(data).extra == {"segments": [{"size": 3, "share": 0.5}]}


def synthetic_store(shoppers=150, products=400):
    from personalization.operations.history import import_frame
    from personalization.operations.synthetic import generate_catalog, generate_histories

    import_frame(generate_histories(generate_catalog(products, seed=3), shoppers, seed=3))


def test_train_all_publishes_every_model_and_a_second_run_is_judged_against_the_active_ones(capsys):
    from django.core.management import call_command

    synthetic_store()

    call_command("personalization_train", "--model", "all", "--device", "cpu")

    first = {run.kind: run for run in TrainingRun.objects.all()}
    assert set(first) == {"next_basket", "autoencoder", "propensity"}
    assert all(run.status in ("promoted", "kept_inactive") for run in first.values()), [r.message for r in first.values()]
    for kind, run in first.items():
        version = run.model_version
        assert version.artifact.name and version.algorithm and version.data_window
        assert version.metrics["baseline"] or version.metrics["rivals"]  # next basket: the other algorithms
        assert version.is_active == (run.status == "promoted")
    for run in first.values():  # whatever the gate said, the next run must beat these
        registry.activate(run.model_version)

    call_command("personalization_train", "--model", "all", "--device", "cpu")

    second = {run.kind: run for run in TrainingRun.objects.exclude(pk__in=[r.pk for r in first.values()])}
    for kind, run in second.items():
        assert run.status in ("promoted", "kept_inactive"), run.message
        assert run.model_version.metrics["active_before"], kind
        assert "active version" in run.message or "baseline" in run.message, run.message
        if run.status == "promoted":
            assert "active version" in run.message
    out = capsys.readouterr().out
    assert all(name in out for name in ("next basket (CNN):", "shopper autoencoder:", "purchase propensity:")), out


def test_if_no_active_trains_only_the_models_without_an_active_version(capsys):
    from django.core.management import call_command

    synthetic_store()
    call_command("personalization_train", "--model", "autoencoder", "--device", "cpu")
    registry.activate(ModelVersion.objects.get())

    call_command("personalization_train", "--model", "autoencoder", "--if-no-active")

    assert TrainingRun.objects.count() == 1
    assert "nothing to train" in capsys.readouterr().out


def test_a_new_propensity_model_is_judged_against_the_active_one_on_the_same_shoppers():
    synthetic_store()
    [first] = training.train(kinds=["propensity"])
    registry.activate(first.model_version)

    [second] = training.train(kinds=["propensity"])

    active_before = second.model_version.metrics["active_before"]
    # Re-scored on this run's held-out shoppers, not copied from the version's own metrics.
    assert 0.5 < active_before["auc"] <= 1.0
    assert active_before["auc"] != pytest.approx(first.model_version.metrics["auc"], abs=1e-9)
    if second.status == "promoted":
        assert "active version" in second.message


def test_the_active_version_is_judged_on_the_baskets_it_never_saw():
    import pandas as pd

    from personalization.operations.synthetic import generate_catalog, generate_histories

    frame = generate_histories(generate_catalog(200, seed=5), 120, seed=5)
    data = fitting.TrainingData(frame)
    split = data.split
    last_orders = frame.groupby("user_id")["ordered_at"].max().sort_values()
    cutoff = last_orders.iloc[len(last_orders) // 2]  # the active version saw orders up to here
    version = ModelVersion(kind="next_basket", data_window={"last_order_at": cutoff.isoformat()})

    unseen = fitting.unseen_by(version, data)

    unseen_ids = set(split.history.user_ids[unseen.users])
    evaluated = set(split.history.user_ids[split.users])
    assert unseen_ids == {u for u in evaluated if last_orders[u] > cutoff}
    assert 0 < len(unseen_ids) < len(evaluated)
    assert fitting.unseen_by(ModelVersion(data_window={"last_order_at": pd.Timestamp.max.isoformat()}), data) is None


def test_the_gate_compares_with_the_active_version_on_the_same_shoppers():
    promote, reason = training.decide(outcome(0.50, 0.40, active=0.45, versus={"ndcg@10": 0.44}))

    assert not promote
    assert reason == "kept inactive: ndcg@10 0.4400 does not beat the active version's 0.4500 on the 40 shoppers with baskets it never saw"


def test_a_metric_no_shopper_can_give_is_stored_as_null_and_the_run_does_not_fail():
    """Every held-out basket repeats the shopper's past ones: nothing new to discover, so the
    discovery metrics are NaN, which JSON cannot hold."""
    from datetime import timedelta

    from django.utils import timezone

    from personalization.models import Event

    start = timezone.now() - timedelta(days=60)
    Event.objects.bulk_create(
        Event(kind="purchase", user_id=str(user), order_id=f"{user}-{n}", product_id=str(product), quantity=1,
              dedupe_key=f"{user}-{n}-{product}", created_at=start + timedelta(days=7 * n, hours=user))
        for user in range(16) for n in range(5) for product in (1, 2, 3)
    )  # fmt: skip

    runs = training.train(kinds=["next_basket", "autoencoder"])

    assert all(run.status != "failed" for run in runs), [run.message for run in runs]
    stored = ModelVersion.objects.get(kind="autoencoder").metrics
    assert None in stored.values()


def test_the_train_command_precomputes_recent_shoppers_recommendations_after_a_promotion(celery_eager, settings, monkeypatch):
    """As the retrain task does (test_tasks): training itself starts the precompute."""
    from django.core.management import call_command

    from personalization.capture.events import Shopper
    from personalization.models import Placement
    from personalization.serving import candidates, precompute, ranking
    from tests.personalization.stores import build_store

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PRECOMPUTE_ACTIVE_DAYS": 365}  # the orders are weeks old
    store = build_store()
    call_command("personalization_train", "--model", "next_basket", "--device", "cpu")
    assert registry.active("next_basket") is not None
    generated = []
    generate = candidates.generate
    monkeypatch.setattr(candidates, "generate", lambda strategy, context: generated.append(strategy) or generate(strategy, context))

    buy_again = Placement.objects.get(slug="home-buy-again")
    for user in store.shoppers["dairy"] + store.shoppers["bakery"]:
        assert ranking.recommend(buy_again, Shopper(user_id=user.pk)).items

    assert buy_again in precompute.placements() and generated == []

