"""Model versions: published inactive, one active per kind, rollback, loading with fallback."""
import pytest
from django.core.cache import cache

from personalization import registry
from personalization.ml import __version__ as MODEL_CODE_VERSION
from personalization.ml import checkpoint
from personalization.ml.baselines import PersonalFrequency
from personalization.ml.sequences import SPECIAL_ITEMS, BasketSequences, Vocabulary
from personalization.models import ModelVersion

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]


def model(name):
    """The artifact of a real fitted model, told apart by `name` (in its metrics)."""
    vocabulary = Vocabulary(SPECIAL_ITEMS + ("apples", "bread"))
    fitted = PersonalFrequency().fit(BasketSequences.from_baskets([[[2, 3], [2]]], vocabulary))
    return checkpoint.save(fitted, vocabulary=vocabulary, metrics={"name": name})


def name_of(loaded):
    return None if loaded is None else loaded.metrics["name"]


def test_a_version_names_its_algorithm_and_the_model_codes_version_and_loads_as_a_checkpoint():
    version = registry.publish("next_basket", model("a"), algorithm="personal_frequency")

    assert (version.algorithm, version.get_algorithm_display()) == ("personal_frequency", "personal frequency")
    assert version.code_version == MODEL_CODE_VERSION
    loaded = registry.load(version)
    assert isinstance(loaded.model, PersonalFrequency) and name_of(loaded) == "a"


def test_published_versions_are_numbered_per_kind_and_start_inactive():
    first = registry.publish("next_basket", model("a"), metrics={"recall@10": 0.3})
    second = registry.publish("next_basket", model("b"))
    other = registry.publish("autoencoder", model("c"))

    assert (first.number, second.number, other.number) == (1, 2, 1)
    assert not any(v.is_active for v in ModelVersion.objects.all())
    assert name_of(registry.load(first)) == "a"
    assert registry.active("next_basket") is None


def test_activating_a_version_deactivates_the_other_of_its_kind():
    first = registry.activate(registry.publish("next_basket", model("a")))
    second = registry.activate(registry.publish("next_basket", model("b")))

    first.refresh_from_db()
    assert registry.active("next_basket") == second
    assert not first.is_active


def test_rollback_returns_to_the_previously_active_version():
    first = registry.activate(registry.publish("next_basket", model("a")))
    registry.activate(registry.publish("next_basket", model("b")))

    assert registry.rollback("next_basket") == first
    assert registry.active("next_basket") == first


def test_rollback_without_history_does_nothing():
    registry.activate(registry.publish("next_basket", model("a")))

    assert registry.rollback("next_basket") is None


def test_a_serving_process_picks_up_a_new_active_version_without_restart():
    registry.activate(registry.publish("next_basket", model("a")))
    assert name_of(registry.load_active("next_basket")) == "a"

    newer = registry.publish("next_basket", model("b"))
    # Another process activates it: this process only learns through the database and the cache.
    registry.ModelVersion.objects.filter(kind="next_basket").update(is_active=False)
    registry.ModelVersion.objects.filter(pk=newer.pk).update(is_active=True, activated_at=newer.created_at)
    cache.delete(registry._active_key("next_basket"))  # what ACTIVE_CHECK_SECONDS passing does

    assert name_of(registry.load_active("next_basket")) == "b"


def test_a_corrupt_artifact_falls_back_to_the_version_active_before(caplog):
    registry.activate(registry.publish("next_basket", model("good")))
    registry.activate(registry.publish("next_basket", b"garbage"))

    assert name_of(registry.load_active("next_basket")) == "good"
    assert "Cannot load next basket (CNN) v2" in caplog.text


def test_a_missing_artifact_with_nothing_to_fall_back_to_gives_none(caplog):
    version = registry.activate(registry.publish("next_basket", model("a")))
    version.artifact.storage.delete(version.artifact.name)

    assert name_of(registry.load_active("next_basket")) is None
    assert "Cannot load" in caplog.text


def test_nothing_active_loads_nothing():
    registry.publish("next_basket", model("a"))

    assert name_of(registry.load_active("next_basket")) is None


def test_a_model_that_cannot_load_is_not_retried_on_every_request(
    caplog, django_assert_num_queries, django_capture_on_commit_callbacks
):
    version = registry.activate(registry.publish("next_basket", b"garbage"))
    assert name_of(registry.load_active("next_basket")) is None
    caplog.clear()

    with django_assert_num_queries(0):
        assert name_of(registry.load_active("next_basket")) is None
    assert "Cannot load" not in caplog.text

    version.artifact.storage.delete(version.artifact.name)
    with django_capture_on_commit_callbacks(execute=True):
        registry.activate(registry.publish("next_basket", model("fixed")))
    assert name_of(registry.load_active("next_basket")) == "fixed"  # a new activation is seen at once
