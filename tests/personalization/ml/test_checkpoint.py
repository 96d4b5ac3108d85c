import io

import numpy as np
import pytest
import torch

from personalization.ml import __version__, checkpoint
from personalization.ml.autoencoder import AutoencoderConfig, ShopperAutoencoder
from personalization.ml.baselines import CoOccurrence, PersonalFrequency, Popularity, TifuKnn
from personalization.ml.next_basket import NextBasketCNN, NextBasketConfig
from personalization.ml.orders import data_window
from personalization.ml.propensity import PropensityConfig, PurchasePropensity
from personalization.ml.scoring import score_shoppers
from personalization.ml.sequences import build_sequences


@pytest.fixture(scope="module")
def store(store_frame):
    return build_sequences(store_frame)


def test_next_basket_model_round_trips_with_its_vocabulary_metrics_and_data_window(store, store_frame):
    torch.manual_seed(0)
    model = NextBasketCNN(NextBasketConfig(n_items=store.n_items, window=3, embedding_dim=8))
    model.repeat.item_statistics.normal_()
    window = data_window(store_frame)
    metrics = {"recall@10": np.float64(0.4)}

    blob = checkpoint.save(model, vocabulary=store.vocabulary, metrics=metrics, data_window=window)
    loaded = checkpoint.load(blob)

    assert loaded.kind == "next_basket_cnn" and loaded.code_version == __version__
    assert loaded.model.config == model.config
    assert loaded.vocabulary == store.vocabulary
    assert loaded.metrics == {"recall@10": 0.4} and loaded.data_window == window
    assert torch.equal(score_shoppers(loaded.model, store, [0, 1]), score_shoppers(model, store, [0, 1]))


def test_checkpoints_go_to_paths_and_file_objects(store, tmp_path):
    model = ShopperAutoencoder(AutoencoderConfig(n_items=store.n_items, hidden_dim=16, latent_dim=4))
    path = tmp_path / "autoencoder.pt"
    buffer = io.BytesIO()

    checkpoint.save(model, path, vocabulary=store.vocabulary)
    checkpoint.save(model, buffer, vocabulary=store.vocabulary)
    buffer.seek(0)

    for source in (str(path), buffer):
        loaded = checkpoint.load(source)
        assert loaded.kind == "autoencoder"
        assert torch.equal(loaded.model.decoder[2].weight, model.decoder[2].weight)


def test_propensity_model_round_trips_with_its_scaling():
    model = PurchasePropensity(PropensityConfig(n_features=2))
    model.set_scaling(torch.tensor([[1.0, 5.0], [3.0, 9.0]]))

    loaded = checkpoint.load(checkpoint.save(model))

    assert loaded.vocabulary is None and torch.equal(loaded.model.scale, model.scale)
    assert torch.equal(loaded.model.probability(torch.ones(1, 2)), model.probability(torch.ones(1, 2)))


@pytest.mark.parametrize(
    "baseline",
    [Popularity(), PersonalFrequency(), CoOccurrence(source="history"), TifuKnn(neighbours=5, alpha=0.6)],
    ids=lambda b: b.name,
)
def test_fitted_baselines_round_trip_for_serving(store, baseline):
    baseline.fit(store)

    loaded = checkpoint.load(checkpoint.save(baseline, vocabulary=store.vocabulary))

    assert loaded.kind == baseline.name and loaded.config == baseline.params()
    served = loaded.model if baseline.name != "tifu_knn" else loaded.model.fit(store)  # TIFU-KNN refits on data
    assert torch.allclose(served.score(store, [0, 3]), baseline.score(store, [0, 3]))


def test_a_fitted_tifu_knn_scores_from_its_checkpoint_without_refitting(store):
    baseline = TifuKnn(neighbours=5).fit(store)

    loaded = checkpoint.load(checkpoint.save(baseline, vocabulary=store.vocabulary))

    assert torch.allclose(loaded.model.score(store, [0, 3]), baseline.score(store, [0, 3]))


def test_a_baselines_state_is_stored_as_tensors_and_plain_values(store):
    baseline = PersonalFrequency().fit(store)
    payload = torch.load(io.BytesIO(checkpoint.save(baseline, vocabulary=store.vocabulary)), weights_only=True)

    assert payload["kind"] == "personal_frequency" and payload["config"] == {}
    assert set(payload["state"]) == {"counts"} and torch.equal(payload["state"]["counts"], baseline.counts)


def test_a_sparse_state_whose_indices_do_not_fit_is_refused_before_it_is_used(store):
    blob = checkpoint.save(TifuKnn(neighbours=5).fit(store), vocabulary=store.vocabulary)
    payload = torch.load(io.BytesIO(blob), weights_only=True)
    indices = torch.tensor([[0, 7], [1, 99]])  # row 7, column 99: outside a 2 x 3 matrix
    payload["state"]["vectors"] = {"layout": "sparse_coo", "indices": indices, "values": torch.ones(2), "size": [2, 3]}
    tampered = io.BytesIO()
    torch.save(payload, tampered)

    with pytest.raises(ValueError, match="do not fit"):
        checkpoint.load(tampered.getvalue())


def test_something_that_is_not_a_checkpoint_is_refused():
    with pytest.raises(ValueError, match="checkpoint"):
        checkpoint.load(b"definitely not a checkpoint")
    with pytest.raises(ValueError, match="cannot checkpoint"):
        checkpoint.save(object())


def test_weights_that_do_not_fit_the_model_say_so(store):
    model = ShopperAutoencoder(AutoencoderConfig(n_items=store.n_items, hidden_dim=16, latent_dim=4))
    blob = checkpoint.save(model)
    payload = torch.load(io.BytesIO(blob), weights_only=True)
    payload["config"]["hidden_dim"] = 8
    tampered = io.BytesIO()
    torch.save(payload, tampered)

    with pytest.raises(ValueError, match="do not fit"):
        checkpoint.load(tampered.getvalue())
