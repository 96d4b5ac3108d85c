import numpy as np
import pytest
import torch

from personalization.ml.baselines import CoOccurrence, PersonalFrequency, Popularity, TifuKnn
from personalization.ml.sequences import build_sequences

from .conftest import order_lines


def ranking(model, sequences, user_id, n):
    scores = model.score(sequences, sequences.row_of([user_id]))[0]
    return sequences.vocabulary.decode(scores.topk(n).indices)


@pytest.fixture
def shop():
    return build_sequences(
        order_lines(
            {
                "u": [["apple", "bread"], ["apple", "cheese"], ["apple", "bread"]],
                "v": [["dates", "eggs"], ["dates"], ["dates", "eggs"], ["eggs"]],
                "w": [["dates"], ["bread", "dates"]],
            }
        )
    )


def test_popularity_ranks_products_by_baskets_holding_them(shop):
    model = Popularity().fit(shop)
    scores = model.score(shop, shop.row_of(["u"]))[0]

    assert ranking(model, shop, "u", 1) == ["dates"]
    counts = dict(zip(shop.vocabulary.items[2:], scores[2:].tolist()))
    assert counts == {"apple": 3, "bread": 3, "cheese": 1, "dates": 5, "eggs": 3}


def test_personal_frequency_ranks_own_products_by_count_then_fills_with_popularity(shop):
    model = PersonalFrequency().fit(shop)

    # u: apple 3, bread 2, cheese 1; then the rest by popularity: dates (5) before eggs (3).
    assert ranking(model, shop, "u", 5) == ["apple", "bread", "cheese", "dates", "eggs"]


def test_personal_frequency_breaks_equal_counts_by_popularity():
    sequences = build_sequences(order_lines({"u": [["rare", "common"]], "v": [["common"]], "w": [["common"]]}))

    assert ranking(PersonalFrequency().fit(sequences), sequences, "u", 2) == ["common", "rare"]


def test_co_occurrence_scores_what_was_bought_with_the_last_basket():
    sequences = build_sequences(
        order_lines({"u": [["a", "b"], ["a", "b"], ["a", "c"], ["d"]], "v": [["d", "e"], ["a"]]})
    )
    model = CoOccurrence().fit(sequences)

    # v's last basket is [a]: P(b | a) = 2/4, P(c | a) = 1/4; the rest by popularity: a (4), d (2), e (1).
    assert ranking(model, sequences, "v", 5) == ["b", "c", "a", "d", "e"]


def test_co_occurrence_conditional_probabilities():
    sequences = build_sequences(order_lines({"u": [["a", "b"], ["a", "b"], ["a", "c"]]}))
    model = CoOccurrence().fit(sequences)
    a, b, c = sequences.vocabulary.encode(["a", "b", "c"])

    dense = model.conditional.to_dense()

    assert dense[a, b] == pytest.approx(2 / 3) and dense[a, c] == pytest.approx(1 / 3)
    assert dense[b, a] == pytest.approx(1.0) and dense[a, a] == 0.0


def test_tifu_knn_blends_own_decayed_vector_with_the_nearest_shopper():
    sequences = build_sequences(
        order_lines({"u": [["a"], ["a", "b"]], "v": [["a", "b"], ["b"]], "w": [["c"], ["c"]]})
    )
    model = TifuKnn(group_size=1, within_decay=1.0, across_decay=0.5, neighbours=1, alpha=0.5).fit(sequences)
    a, b, c = sequences.vocabulary.encode(["a", "b", "c"])

    scores = model.score(sequences, sequences.row_of(["u"]))[0]

    # u = (a .75, b .5); its nearest shopper (never itself) is v = (a .25, b .75): 0.5 u + 0.5 v.
    np.testing.assert_allclose(scores[[a, b, c]].numpy(), [0.5, 0.625, 0.0], atol=1e-6)


def test_tifu_knn_never_counts_a_shopper_as_their_own_neighbour():
    sequences = build_sequences(order_lines({"u": [["a"]], "v": [["b"]]}))
    model = TifuKnn(neighbours=1, alpha=0.0).fit(sequences)
    b = sequences.vocabulary.encode(["b"])[0]

    assert ranking(model, sequences, "u", 1) == ["b"]
    assert model.score(sequences, sequences.row_of(["u"]))[0, b] == pytest.approx(1.0, abs=1e-6)


def test_baselines_refuse_baskets_from_another_vocabulary(shop):
    other = build_sequences(order_lines({"x": [["zucchini"]]}))

    with pytest.raises(ValueError, match="vocabulary"):
        Popularity().fit(shop).score(other)


def test_tifu_knn_variants_score_as_separately_fitted_models(store_frame):
    sequences = build_sequences(store_frame)
    users = np.arange(0, sequences.n_users, 3)
    variants = [{"neighbours": k, "alpha": a} for k in (2, 15) for a in (0.3, 0.9)]
    model = TifuKnn(group_size=3, within_decay=0.9, across_decay=0.8, chunk=16).fit(sequences)

    together = model.score_variants(sequences, users, variants)

    for variant, scores in zip(variants, together):
        alone = TifuKnn(group_size=3, within_decay=0.9, across_decay=0.8, **variant).fit(sequences)
        torch.testing.assert_close(scores, alone.score(sequences, users), rtol=1e-5, atol=1e-6)


def test_co_occurrence_variants_score_as_separately_fitted_models(store_frame):
    sequences = build_sequences(store_frame)
    users = np.arange(sequences.n_users)
    variants = [{"source": "history"}, {"source": "last_basket"}]

    together = CoOccurrence().fit(sequences).score_variants(sequences, users, variants)

    for variant, scores in zip(variants, together):
        assert torch.equal(scores, CoOccurrence(**variant).fit(sequences).score(sequences, users))
    assert not torch.equal(together[0], together[1])


def test_co_occurrence_survives_its_checkpoint_state(store_frame):
    sequences = build_sequences(store_frame)
    model = CoOccurrence(source="history").fit(sequences)

    rebuilt = CoOccurrence.from_state(model.params(), model.state())

    assert torch.equal(rebuilt.score(sequences), model.score(sequences))
