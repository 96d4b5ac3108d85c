import numpy as np
import pytest
import torch

from personalization.ml.autoencoder import (
    AutoencoderConfig,
    ShopperAutoencoder,
    describe_segments,
    kmeans,
    shopper_embeddings,
)
from personalization.ml.batches import NextBasketData, model_inputs
from personalization.ml.features import Decay
from personalization.ml.next_basket import NextBasketCNN, NextBasketConfig
from personalization.ml.propensity import PropensityConfig, PurchasePropensity
from personalization.ml.scoring import score_session, score_shoppers
from personalization.ml.sequences import SPECIAL_ITEMS, build_sequences
from personalization.ml.train import TrainConfig, train_autoencoder, train_next_basket

from .conftest import order_lines

SMALL_CNN = NextBasketConfig(window=3, max_basket_size=24, embedding_dim=16, horizontal_filters=4, vertical_filters=2)
QUICK = TrainConfig(epochs=3, patience=None, learning_rate=1e-2, seed=0)


@pytest.fixture(scope="module")
def store(store_frame):
    return build_sequences(store_frame)


@pytest.fixture(scope="module")
def trained_cnn(store):
    return train_next_basket(store, SMALL_CNN, QUICK).model


def a_batch(sequences, config, n=8):
    return NextBasketData.for_model(sequences, config).batch(np.arange(n))


def test_cnn_scores_every_item_and_returns_a_loss_only_with_targets(store):
    config = NextBasketConfig(**{**SMALL_CNN.__dict__, "n_items": store.n_items})
    model = NextBasketCNN(config)
    x, targets = a_batch(store, config)

    scores, no_loss = model(x)
    no_scores, loss = model(x, targets)
    loss.backward()

    assert scores.shape == (8, store.n_items) and no_loss is None and no_scores is None
    assert torch.isfinite(loss) and loss.item() > 0
    assert model.repeat.mlp[0].weight.grad is not None and model.output.weight.grad is not None


def test_cnn_scores_are_log_probabilities_and_never_the_padding_or_unknown_entries(trained_cnn, store):
    scores = score_shoppers(trained_cnn, store, users=[0, 1, 2])

    assert torch.allclose(scores.exp().sum(1), torch.ones(3), atol=1e-4)
    best = scores.topk(10).indices
    assert not np.isin(best.numpy(), range(len(SPECIAL_ITEMS))).any()


def test_repeat_component_puts_a_shoppers_staple_near_the_top(trained_cnn, store):
    popularity = np.bincount(store.items, minlength=store.n_items)
    popularity[: len(SPECIAL_ITEMS)] = popularity.max() + 1
    staple = int(np.argmin(popularity))  # the least popular product: only the repeat signal lifts it
    others = np.random.default_rng(0).choice(np.arange(len(SPECIAL_ITEMS), store.n_items), size=(6, 4))
    history = [[staple, *basket] for basket in others.tolist()]

    scores = score_session(trained_cnn, history[-1], previous_baskets=history[:-1])

    assert staple in scores.topk(3).indices.tolist()


def test_cart_completion_scores_an_anonymous_partial_basket(trained_cnn, store):
    cart = [int(store.items[0]), int(store.items[1])]

    anonymous = score_session(trained_cnn, cart)
    known = score_session(trained_cnn, cart, previous_baskets=store.baskets_of(0))

    assert anonymous.shape == (store.n_items,) and torch.isfinite(anonymous[len(SPECIAL_ITEMS) :]).all()
    assert not torch.allclose(anonymous, known)


def test_same_seed_gives_the_same_scores_and_another_seed_does_not(store):
    few = store.subset(np.arange(30))
    once = TrainConfig(epochs=1, patience=None, seed=0)
    first = train_next_basket(few, SMALL_CNN, once).model
    again = train_next_basket(few, SMALL_CNN, once).model
    other = train_next_basket(few, SMALL_CNN, TrainConfig(epochs=1, patience=None, seed=1)).model

    assert torch.equal(score_shoppers(first, few, [0, 5]), score_shoppers(again, few, [0, 5]))
    assert not torch.equal(score_shoppers(first, few, [0, 5]), score_shoppers(other, few, [0, 5]))


def test_autoencoder_scores_only_products_never_bought_and_embeds_shoppers(store):
    config = AutoencoderConfig(n_items=store.n_items, hidden_dim=32, latent_dim=8)
    model = ShopperAutoencoder(config)
    x, targets = a_batch(store, config)

    scores, _ = model(x)
    no_scores, loss = model(x, targets)
    embedding = model.embed(x)

    assert scores.shape == (8, store.n_items) and no_scores is None and torch.isfinite(loss)
    assert torch.all(scores[x.rows, x.items] < -1e8)
    assert embedding.shape == (8, 8)


def test_the_autoencoder_reads_and_scores_the_most_bought_products_only(store):
    config = AutoencoderConfig(hidden_dim=16, latent_dim=4, products=6)
    model = train_autoencoder(store, config, QUICK).model
    counts = np.bincount(store.items, minlength=store.n_items)
    counts[: len(SPECIAL_ITEMS)] = -1
    most = np.argsort(-counts, kind="stable")[:6]

    scores = score_shoppers(model, store, users=[0, 1])

    assert sorted(model.products.items.tolist()) == sorted(most.tolist())
    others = np.setdiff1d(np.arange(store.n_items), most)
    assert torch.all(scores[:, others] < -1e8) and model.decoder[2].out_features == 6


@pytest.mark.parametrize("variational", [False, True])
def test_autoencoder_trains_as_dae_or_vae(store, variational):
    config = AutoencoderConfig(hidden_dim=32, latent_dim=8, variational=variational, kl_anneal_steps=10)

    result = train_autoencoder(store, config, QUICK)

    assert shopper_embeddings(result.model, store).shape == (store.n_users, 8)
    assert all(np.isfinite(report.train_loss) for report in result.history)


def test_propensity_model_standardises_features_and_gives_probabilities():
    model = PurchasePropensity(PropensityConfig(n_features=3, hidden_dim=4))
    x = torch.tensor([[1.0, 10.0, 100.0], [3.0, 30.0, 300.0]])
    model.set_scaling(x)

    logits, loss = model(x, torch.tensor([0.0, 1.0]))

    assert logits.shape == (2,) and torch.isfinite(loss)
    assert torch.all((model.probability(x) > 0) & (model.probability(x) < 1))


def test_models_refuse_an_empty_vocabulary():
    with pytest.raises(ValueError, match="at least one product"):
        NextBasketCNN(NextBasketConfig(n_items=len(SPECIAL_ITEMS)))


def test_kmeans_finds_separated_groups_and_is_seeded():
    generator = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    points = torch.cat([c + torch.randn(30, 2, generator=generator) for c in centers])

    labels, found = kmeans(points, 3, seed=4)

    groups = labels.view(3, 30)
    assert all(len(set(row.tolist())) == 1 for row in groups)
    assert len(set(groups[:, 0].tolist())) == 3
    assert torch.equal(labels, kmeans(points, 3, seed=4)[0])


def test_kmeans_refuses_no_points():
    with pytest.raises(ValueError, match="at least one point"):
        kmeans(torch.zeros(0, 2), 3)


def test_segments_report_their_distinctive_categories():
    frame = order_lines({"u": [["apple", "avocado"]], "v": [["apricot"]], "w": [["bread", "bagel"]]})
    sequences = build_sequences(frame)
    categories = np.array(["", ""] + [p[0].upper() for p in sequences.vocabulary.items[2:]], dtype=object)

    segments = describe_segments([0, 0, 1], sequences, categories, top=1)

    assert [s["shoppers"] for s in segments] == [2, 1]
    assert segments[0]["top_categories"][0]["category"] == "A"
    assert segments[1]["top_categories"][0]["category"] == "B"
    assert segments[1]["top_categories"][0]["share"] == 1.0


def test_model_inputs_of_a_session_match_the_models_window(store):
    x = model_inputs(store, [0], window=SMALL_CNN.window, max_basket_size=SMALL_CNN.max_basket_size, decay=Decay())

    assert x.baskets.shape == (1, SMALL_CNN.window, SMALL_CNN.max_basket_size)


def test_the_explore_distribution_covers_the_most_bought_products_only(store):
    config = NextBasketConfig(**{**SMALL_CNN.__dict__, "explore_products": 5})
    model = train_next_basket(store, config, QUICK).model
    counts = np.bincount(store.items, minlength=store.n_items)
    counts[: len(SPECIAL_ITEMS)] = -1

    assert sorted(model.explored.items.tolist()) == sorted(np.argsort(-counts, kind="stable")[:5].tolist())
    scores = score_shoppers(model, store, users=[0])[0]
    bought = np.unique(np.concatenate(store.baskets_of(0)))
    reachable = set(bought.tolist()) | set(model.explored.items.tolist())
    unreachable = [i for i in range(len(SPECIAL_ITEMS), store.n_items) if i not in reachable]
    assert torch.all(scores[unreachable] < -1e8)
    assert torch.allclose(scores.exp().sum(), torch.tensor(1.0), atol=1e-4)


def test_the_neighbour_score_is_tifu_knn_s_and_never_counts_the_shopper_themself(store):
    from personalization.ml.baselines import TifuKnn
    from personalization.ml.features import decayed_frequency
    from personalization.ml.next_basket import NeighbourPool
    from personalization.ml.sequences import shopper_keys

    decay = Decay(3, 0.9, 0.8)
    vectors = decayed_frequency(store, decay=decay)
    pool = NeighbourPool(store.n_items, store.n_users, vectors._nnz(), neighbours=7)
    pool.fill(vectors, shopper_keys(store.user_ids))
    users = np.arange(10)

    ours = pool(model_inputs(store, users, window=1, max_basket_size=4, decay=decay))

    tifu = TifuKnn(group_size=3, within_decay=0.9, across_decay=0.8, neighbours=7, alpha=0.0).fit(store)
    expected = tifu.score(store, users)[:, len(SPECIAL_ITEMS) :]
    assert torch.allclose(ours[:, len(SPECIAL_ITEMS) :], expected, atol=1e-6)


def test_a_trained_model_scores_the_same_from_its_checkpoint_without_the_training_data(trained_cnn, store):
    from personalization.ml import checkpoint

    loaded = checkpoint.load(checkpoint.save(trained_cnn, vocabulary=store.vocabulary)).model

    assert loaded.config.pool_shoppers == store.n_users and loaded.config.pool_entries > 0
    one = store.subset([3])  # scored alone: the neighbours come from the checkpoint
    assert torch.allclose(score_shoppers(loaded, one), score_shoppers(trained_cnn, store, [3]), atol=1e-5)


def test_the_convolutions_are_caser_s_horizontal_and_vertical_filters():
    model = NextBasketCNN(NextBasketConfig(n_items=10, window=4, embedding_dim=6))
    image = torch.randn(3, 4, 6)

    as_conv2d = [torch.relu(conv(image.unsqueeze(1))).squeeze(3).amax(dim=2) for conv in model.horizontal]
    as_conv2d.append(model.vertical(image.unsqueeze(1)).flatten(1))

    assert torch.allclose(model._convolutions(image), torch.cat(as_conv2d, dim=1), atol=1e-6)


# The CPU scorer -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_autoencoder(store):
    return train_autoencoder(store, AutoencoderConfig(), QUICK).model


@pytest.mark.parametrize("which", ["trained_cnn", "trained_autoencoder"])
def test_the_cpu_scorer_ranks_as_the_network_does(request, store, which):
    from personalization.ml.scoring import cpu_scorer

    model = request.getfixturevalue(which)
    scorer = cpu_scorer(model)
    exact, close = score_shoppers(model, store), score_shoppers(scorer, store)

    assert scorer is not model
    top = lambda scores: [set(row) for row in scores.topk(10, dim=1).indices.tolist()]  # noqa: E731
    overlap = np.mean([len(a & b) / 10 for a, b in zip(top(exact), top(close))])
    assert overlap >= 0.95
    assert (close - exact).abs().max() <= 0.05 * (exact.max() - exact[exact > -1e8].min())


def test_only_the_catalog_wide_layers_are_quantized_the_rest_is_shared(trained_autoencoder, trained_cnn):
    from personalization.ml.scoring import cpu_scorer

    scorer = cpu_scorer(trained_autoencoder)
    assert scorer.encoder is trained_autoencoder.encoder  # shared, not copied
    assert isinstance(scorer.decoder[2].layer, torch.ao.nn.quantized.dynamic.Linear)
    assert type(trained_autoencoder.decoder[2]) is torch.nn.Linear  # the original is untouched

    cnn = cpu_scorer(trained_cnn)
    assert cnn.item_embedding is trained_cnn.item_embedding and cnn.shopper is trained_cnn.shopper
    assert isinstance(cnn.output.layer, torch.ao.nn.quantized.dynamic.Linear)


@pytest.mark.parametrize("which", ["trained_cnn", "trained_autoencoder"])
def test_the_cpu_scorer_scores_a_shopper_the_same_alone_as_in_any_batch(request, store, which):
    from personalization.ml.scoring import cpu_scorer

    scorer = cpu_scorer(request.getfixturevalue(which))
    together = score_shoppers(scorer, store)
    alone = torch.cat([score_shoppers(scorer, store, [user]) for user in range(store.n_users)])

    # Quantizing a whole batch's activations at once would tie each shopper's scores to the others'.
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)


def test_the_network_itself_scores_when_quantizing_fails(trained_autoencoder, monkeypatch, caplog):
    from personalization.ml.scoring import cpu_scorer

    def unsupported(*args, **kwargs):
        raise RuntimeError("no quantized engine")

    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic", unsupported)

    assert cpu_scorer(trained_autoencoder) is trained_autoencoder
    assert "dynamic quantization failed" in caplog.text
