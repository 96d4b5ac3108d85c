"""Co-purchase relations (ml.related): lift from baskets, explanation anchors, similar products."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from personalization.ml.related import Related, choose_anchors, item_categories, similar_scores
from personalization.ml.sequences import SPECIAL_ITEMS, Vocabulary, build_sequences

S = len(SPECIAL_ITEMS)  # item indices of products start here


def baskets(*lists):
    """(basket offsets, flat items) of baskets given as lists of product numbers (0 = the first product)."""
    items = np.concatenate([np.asarray(b, dtype=np.int64) + S for b in lists])
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in lists])])
    return offsets, items


def related_of(lists, n_products, categories=None, **options):
    offsets, items = baskets(*lists)
    codes = None if categories is None else np.asarray([-1] * S + list(categories))
    return Related.from_baskets(offsets, items, n_products + S, codes, **options)


def test_lift_is_shrunk_toward_one_and_kept_only_above_it():
    # 0 and 1 share 4 of 8 baskets; 2 and 3 fill the rest; 0 and 2 share one basket only.
    lists = [[0, 1]] * 4 + [[2, 3]] * 3 + [[0, 2]]
    related = related_of(lists, 4, prior=5.0, min_together=2, min_lift=1.0)

    lift = related.pair_lift([S + 0], [S + 1, S + 2, S + 3])[0]

    n, together, expected = 8, 4, 5 * 4 / 8  # 0 is in 5 baskets, 1 in 4
    assert lift[0] == pytest.approx((together + 5) / (expected + 5))
    assert 1 < lift[0] < together * n / (5 * 4)  # shrunk below the raw lift of 1.6
    assert lift[1] == 1 and lift[2] == 1  # one shared basket is below MIN_TOGETHER; never together
    assert related.pair_lift([S + 1], [S + 0])[0, 0] == pytest.approx(lift[0])  # symmetric


def test_a_pair_is_related_when_its_shrunk_lift_reaches_min_lift():
    # 0 and 1: 3 shared baskets of 60 where 1.5 were expected by chance; 2 and 3: 3 where 0.15 were.
    lists = [[0, 1]] * 3 + [[0, 4]] * 7 + [[1, 5]] * 6 + [[2, 3]] * 3 + [[4, 5]] * 41
    related = related_of(lists, 6)

    lift = related.pair_lift([S + 0, S + 2], [S + 1, S + 3])

    assert lift[0, 0] == 1  # (3 + 5) / (1.5 + 5) = 1.23: chance
    assert lift[1, 1] == pytest.approx((3 + 5) / (3 * 3 / 60 + 5))  # 1.57


def test_each_item_keeps_its_strongest_relations_only():
    lists = [[0, 1]] * 6 + [[0, 2]] * 3 + [[0, 3]] * 2 + [[4, 5]] * 20
    related = related_of(lists, 6, top_k=2, prior=1.0)

    kept = related.neighbours[related.indptr[S] : related.indptr[S + 1]]

    assert set(kept) == {S + 1, S + 2}
    assert related.pair_lift([S + 3], [S + 0])[0, 0] > 1  # 3 keeps 0 in its own list


def test_huge_baskets_and_special_items_are_not_counted():
    offsets, items = baskets([0, 1], [0, 1], [8, 9], list(range(2, 8)), list(range(2, 8)))
    items = np.concatenate([[0, 1], items])  # padding and unknown in the first basket
    offsets = np.concatenate([[0], offsets[1:] + 2])

    related = Related.from_baskets(offsets, items, 10 + S, max_basket=5, prior=0.0, min_lift=1.0)

    assert related.pair_lift([S + 0], [S + 1])[0, 0] > 1
    assert related.pair_lift([S + 2], [S + 3])[0, 0] == 1  # the 6-product baskets are left out
    assert not np.isin(related.neighbours, [0, 1]).any()


def test_item_categories_take_each_products_most_common_category():
    vocabulary = Vocabulary(SPECIAL_ITEMS + ("a", "b", "c"))

    codes, names = item_categories(["a", "a", "a", "b", "b", "x"], ["Dairy", "Dairy", "Fruit", "", "Bakery", "Fruit"], vocabulary)

    assert names == ("Bakery", "Dairy")
    assert [names[c] if c >= 0 else None for c in codes[S:]] == ["Dairy", "Bakery", None]
    assert list(codes[:S]) == [-1, -1]


def test_relations_survive_a_state_round_trip_and_a_new_vocabulary():
    related = related_of([[0, 1]] * 4 + [[2, 3]] * 4, 4, categories=[0, 0, 1, -1], prior=1.0)

    again = Related.from_state(related.state())
    moved = related.reindexed(np.array([0, 1, S + 2, S + 0, 1, S + 1]), S + 3)  # product 2 is not there

    assert again.pair_lift([S], [S + 1])[0, 0] == related.pair_lift([S], [S + 1])[0, 0] > 1
    assert list(again.categories) == list(related.categories)
    assert moved.pair_lift([S + 2], [S + 0])[0, 0] == pytest.approx(related.pair_lift([S + 0], [S + 1])[0, 0])
    assert list(moved.categories[S:]) == [0, -1, 0]
    with pytest.raises(ValueError):
        Related.from_state({**related.state(), "lift": torch.zeros(1)})


def test_relations_are_counted_from_order_lines_as_training_reads_them():
    frame = pd.DataFrame(
        {
            "user_id": ["u"] * 6 + ["v"] * 4,
            "order_id": ["1", "1", "2", "2", "3", "3", "4", "4", "5", "5"],
            "product_id": ["milk", "butter", "milk", "butter", "bread", "jam", "milk", "butter", "bread", "jam"],
            "ordered_at": pd.date_range("2025-01-01", periods=10, freq="D").astype(str),
        }
    )
    sequences = build_sequences(frame)
    related = Related.from_sequences(sequences, prior=0.0)
    milk, butter, bread = sequences.vocabulary.encode(["milk", "butter", "bread"])

    assert related.pair_lift([milk], [butter, bread]).tolist() == [[pytest.approx(related.lift_row(milk)[butter]), 1.0]]
    assert related.lift_row(milk)[butter] > 1


# Explanation anchors ---------------------------------------------------------------------------


def relations_with_categories(categories, pairs=()):
    """A Related over len(categories) products with those category codes, and lift 2 for `pairs`."""
    n = len(categories) + S
    rows = [a + S for a, b in pairs] + [b + S for a, b in pairs]
    columns = [b + S for a, b in pairs] + [a + S for a, b in pairs]
    empty = Related.empty(n, np.asarray([-1] * S + list(categories)))
    order = np.lexsort((columns, rows))
    counts = np.bincount(np.asarray(rows, dtype=np.int64), minlength=n)
    return Related(
        np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        np.asarray(columns, dtype=np.int64)[order],
        np.full(len(rows), 2.0, dtype=np.float32),
        empty.categories,
    )


def test_an_anchor_must_be_related_and_the_strongest_relation_wins():
    # products 0-2 dairy, 3-4 bakery, 5 household; 2 and 3 are bought together
    related = relations_with_categories([0, 0, 0, 1, 1, 2], pairs=[(1, 3)])
    favourites = np.array([S + 0, S + 1, S + 5])

    chosen = choose_anchors(np.array([S + 2, S + 3, S + 4]), [favourites], related=related)

    assert chosen[0] in ((0, S + 0), (0, S + 1))  # same shelf
    assert chosen[1] == (0, S + 1)  # bought together
    assert chosen[2] == (-1, -1)  # nothing the shopper buys goes with it: no anchor


def test_no_anchor_names_more_than_half_of_any_first_items():
    related = relations_with_categories([0] * 12)
    items = np.arange(S + 2, S + 12)

    chosen = choose_anchors(items, [np.array([S + 0, S + 1])], related=related)

    anchors = [anchor for _, anchor in chosen]
    for n in range(1, len(items) + 1):
        named = [a for a in anchors[:n] if a >= 0]
        assert max([named.count(a) for a in set(named)], default=0) <= max(1, n // 2)
    assert sorted(anchors[:2]) == [S + 0, S + 1]
    assert anchors[2] == -1  # each has named 1 of the first 3: half of 3 allows no second
    assert anchors.count(-1) == 1  # every later item is explained, each anchor on half the row at most


def test_groups_are_tried_in_turn_and_items_explained_otherwise_keep_their_place():
    related = relations_with_categories([0, 0, 1, 1, 0, 1])
    favourites, cart = np.array([S + 0]), np.array([S + 2])

    chosen = choose_anchors(np.array([S + 4, S + 1, S + 5, S + 3]), [favourites, cart], related=related, needs=[False, True, True, True])

    assert chosen[0] == (-1, -1)  # a repeat: explained as such
    assert chosen[1] == (0, S + 0)  # the favourites first
    assert chosen[2] == (1, S + 2)  # bakery: only the cart's product fits
    assert chosen[3] == (1, S + 2)  # 2 of the first 4 name it: half, not more


def test_an_item_never_explains_itself():
    related = relations_with_categories([0, 0])

    assert choose_anchors(np.array([S + 0]), [np.array([S + 0])], related=related) == [(-1, -1)]


def test_without_relations_the_closest_vector_of_the_first_group_explains_every_item():
    vectors = F.normalize(torch.tensor([[0.0, 0], [0, 0], [1, 0], [0, 1], [1, 0.1], [0.1, 1]]), dim=1)

    chosen = choose_anchors(np.array([S + 2, S + 3]), [np.array([S + 0]), np.array([S + 1])], vectors, max_share=None)

    assert chosen == [(0, S + 0), (0, S + 0)]  # the method before relations: one anchor for all
    assert choose_anchors(np.array([S + 2]), [np.array([S + 0])]) == [(-1, -1)]  # neither vectors nor relations


# Similar products --------------------------------------------------------------------------------


def test_similar_products_come_from_the_same_category_first():
    vectors = F.normalize(torch.tensor([[0.0, 0], [0, 0], [1, 0], [0.99, 0.14], [0.6, 0.8], [0.8, 0.6]]), dim=1)
    related = relations_with_categories([0, 1, 0, 0], pairs=[(0, 1)])

    scores, which = similar_scores(np.array([S + 0]), vectors, related)
    by_vectors, _ = similar_scores(np.array([S + 0]), vectors)

    ranked = torch.argsort(scores[S:], descending=True).tolist()
    assert ranked[:3] == [0, 3, 2]  # itself (left out by the caller), then its shelf, closest first
    assert torch.argsort(by_vectors[S:], descending=True).tolist()[1] == 1  # by vectors alone: another shelf
    assert scores[S + 1] > by_vectors[S + 1]  # co-purchase lift adds a little
    assert set(which.tolist()) == {0}


def test_similar_products_without_learned_vectors_come_from_relations():
    related = relations_with_categories([0, 0, 1], pairs=[(0, 2)])

    scores, _ = similar_scores(np.array([S + 0]), None, related)

    assert scores[S + 1] > scores[S + 2] > 0  # the same shelf, then a product bought with it
