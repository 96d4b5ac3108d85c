"""Precomputing in batches (shortlists.precompute) caches what each shopper's own first request would
have computed, and their request then runs no model."""
import pytest
from django.core.cache import cache

from personalization.capture import privacy
from personalization.capture.events import Shopper
from personalization.models import Placement
from personalization.serving import candidates, precompute, ranking, scoring, shortlists

SLUGS = ["home-for-you", "home-buy-again"]


def served(slug, user):
    found = ranking.recommend(Placement.objects.get(slug=slug), Shopper(user_id=user.pk))
    return [(item.product.id, item.reason, item.explanation) for item in found]


@pytest.fixture
def model_runs(monkeypatch):
    """The shoppers each batch scoring and each single generation was asked for."""
    runs = []
    many, one = candidates.generate_many, candidates.generate
    monkeypatch.setattr(candidates, "generate_many", lambda strategy, contexts: runs.append(len(contexts)) or many(strategy, contexts))
    monkeypatch.setattr(candidates, "generate", lambda strategy, context: runs.append(1) or one(strategy, context))
    return runs


def test_a_batch_caches_what_each_shoppers_own_request_computes(trained, model_runs):
    users = trained.shoppers["dairy"] + trained.shoppers["bakery"]
    computed_alone = {(slug, user.pk): served(slug, user) for slug in SLUGS for user in users}
    assert all(computed_alone.values())
    cache.clear()

    placements = [Placement.objects.get(slug=slug) for slug in SLUGS]
    assert precompute.warm([user.pk for user in users], placements) == len(users)
    model_runs.clear()

    assert {(slug, user.pk): served(slug, user) for slug in SLUGS for user in users} == computed_alone
    assert model_runs == []  # every request read its precomputed shortlist


def test_one_forward_pass_ranks_a_whole_batch(trained, model_runs, monkeypatch):
    users = trained.shoppers["dairy"] + trained.shoppers["bakery"]
    forward = []
    score = scoring.score_shoppers
    monkeypatch.setattr(scoring, "score_shoppers", lambda model, sequences: forward.append(sequences.n_users) or score(model, sequences))

    shortlists.precompute(Placement.objects.get(slug="home-for-you"), [user.pk for user in users])

    assert forward == [len(users)]


def test_shoppers_who_opted_out_get_nothing_precomputed(trained, model_runs):
    stays, leaves = trained.shoppers["dairy"][:2]
    privacy.opt_out(leaves)
    placement = Placement.objects.get(slug="home-for-you")

    assert shortlists.precompute(placement, [stays.pk, leaves.pk]) == 1
    model_runs.clear()
    served("home-for-you", stays)
    assert model_runs == []


def test_an_inactive_placement_precomputes_nothing(trained):
    placement = Placement.objects.get(slug="home-for-you")
    placement.active = False
    placement.save()

    assert shortlists.precompute(placement, [user.pk for user in trained.shoppers["dairy"]]) == 0


def test_requests_and_batches_score_with_one_int8_scorer_per_loaded_version(trained):
    import torch

    from personalization.models import ModelKind

    checkpoint = scoring.served(ModelKind.AUTOENCODER)
    network = scoring.scorer(checkpoint)

    assert scoring.scorer(checkpoint) is network  # made once per loaded version
    assert isinstance(network.decoder[2].layer, torch.ao.nn.quantized.dynamic.Linear)
    assert checkpoint.model.decoder[2].weight.dtype == torch.float32  # item vectors still read the original
