"""Where explanations and similar products get their relations: the model version, else the store's purchases."""
import numpy as np
import pytest
import torch

from personalization import registry
from personalization.capture.events import Shopper
from personalization.learning.frames import purchase_frame
from personalization.ml import checkpoint
from personalization.ml.related import Related
from personalization.ml.sequences import Vocabulary, build_sequences
from personalization.ml.train import TrainConfig, train_next_basket
from personalization.models import ModelKind, ModelVersion, Placement
from personalization.serving import event_stats, explanations, ranking
from personalization.serving.scoring import item_space, related_products, served
from tests.personalization.stores import build_store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("model_files")]

Strategy = Placement.Strategy


@pytest.fixture
def store():
    return build_store()


def activate_cnn(extra=None):
    """A next-basket CNN trained on the store's purchases, active, with `extra` in its checkpoint."""
    sequences = build_sequences(purchase_frame())
    torch.set_num_threads(1)
    config = TrainConfig(epochs=2, patience=None, seed=0, device="cpu", batch_size=32)
    model = train_next_basket(sequences, train_config=config).model
    artifact = checkpoint.save(model, vocabulary=sequences.vocabulary, extra=extra)
    registry.activate(registry.publish(ModelKind.NEXT_BASKET, artifact))
    return sequences.vocabulary


def lift(space, a, b):
    first, second = space.vocabulary.encode([a, b])
    return float(space.related.pair_lift([first], [second])[0, 0])


def test_without_stored_relations_they_are_counted_from_the_stores_purchases(store):
    activate_cnn()

    space = item_space(served(ModelKind.NEXT_BASKET))

    milk, butter, bread, croissant = store.ids("Milk", "Butter", "Bread", "Croissant")
    assert lift(space, milk, butter) > 1.5  # in every dairy order
    assert lift(space, bread, croissant) > 1.5
    assert lift(space, milk, bread) == 1  # never together
    names = space.related.category_names
    assert names[space.related.categories[space.vocabulary.encode([milk])[0]]] == "Dairy"


def test_relations_stored_with_a_version_are_the_ones_served(store):
    sequences = build_sequences(purchase_frame())
    vocabulary = sequences.vocabulary
    milk, bread = vocabulary.encode(store.ids("Milk", "Bread"))
    # The store's purchases never hold milk with bread; the version says they go together.
    rows, columns = np.array([min(milk, bread), max(milk, bread)]), np.array([max(milk, bread), min(milk, bread)])
    indptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    indptr[rows[0] + 1 :] += 1
    indptr[rows[1] + 1 :] += 1
    stored = Related(indptr, columns, np.array([4.0, 4.0], dtype=np.float32), np.full(len(vocabulary), -1, dtype=np.int64))
    activate_cnn(extra={"related": stored.state()})

    space = item_space(served(ModelKind.NEXT_BASKET))

    assert lift(space, *store.ids("Milk", "Bread")) == 4.0
    assert lift(space, *store.ids("Milk", "Butter")) == 1  # not what the events say: what the version says


def test_stored_relations_of_another_vocabulary_are_counted_again(store, caplog):
    activate_cnn(extra={"related": Related.empty(3).state()})

    related = related_products(served(ModelKind.NEXT_BASKET))

    assert "do not fit its vocabulary" in caplog.text
    assert related.n_items == len(served(ModelKind.NEXT_BASKET).vocabulary) and len(related.neighbours)


def test_relations_counted_once_serve_any_vocabulary_of_the_same_products(store):
    vocabulary = build_sequences(purchase_frame()).vocabulary
    shuffled = Vocabulary(vocabulary.items[:2] + tuple(reversed(vocabulary.items[2:])))

    one, other = event_stats.copurchases(vocabulary), event_stats.copurchases(shuffled)

    for pair in [("Milk", "Butter"), ("Bread", "Croissant"), ("Milk", "Bread")]:
        a, b = store.ids(*pair)
        assert one.pair_lift(vocabulary.encode([a]), vocabulary.encode([b])) == other.pair_lift(shuffled.encode([a]), shuffled.encode([b]))
    milk = store.ids("Milk")
    assert one.category_names[one.categories[vocabulary.encode(milk)[0]]] == "Dairy"
    assert other.category_names[other.categories[shuffled.encode(milk)[0]]] == "Dairy"


def test_a_one_product_cart_names_its_product_for_half_the_row_at_most(store):
    activate_cnn()
    unit = Placement.objects.create(slug="cart-test", name="cart", strategy=Strategy.CART_COMPLETION, limit=4)

    found = ranking.recommend(unit, Shopper(session_key="cart-of-bread"), cart_product_ids=store.ids("Bread"))

    named = [item for item in found if item.explanation == "Goes with Bread in your cart"]
    assert len(found) == 4 and 1 <= len(named) <= 2
    assert {item.reason for item in found if item not in named} <= {explanations.FOR_YOU}
    assert all(item.product.category == "Bakery" for item in named)


def test_training_keeps_the_relations_with_every_version_that_explains(store, monkeypatch):
    from personalization.learning import training

    training.train(kinds=[ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER])

    def counted(vocabulary):
        raise AssertionError("serving counted the relations that training stored")

    monkeypatch.setattr(event_stats, "copurchases", counted)
    for kind in (ModelKind.NEXT_BASKET, ModelKind.AUTOENCODER):
        loaded = registry.load(ModelVersion.objects.filter(kind=kind).latest("number"))  # active or kept
        stored = Related.from_state(loaded.extra["related"])
        assert stored.n_items == len(loaded.vocabulary) and len(stored.neighbours)
        assert related_products(loaded).n_items == len(loaded.vocabulary)
