"""The learned models: the next-basket CNN, the shopper autoencoder, purchase propensity; k-means segments.

Each model is a plain nn.Module built from a dataclass config (kept on the model and saved in every
checkpoint) with `forward(x, targets=None) -> (scores, loss)`; loss only when targets are given.
"""
import copy
import logging
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from personalization.ml.data import SPECIAL_ITEMS, PAD, BasketSequences, Decay, model_inputs

logger = logging.getLogger("personalization.ml")

# Scores of the padding and unknown entries: never recommended, finite so that 0 * log p stays 0.
_MASKED = -1e9


def multinomial_nll(logits, targets):
    """Multinomial log-likelihood loss over a multi-hot basket (Liang et al., WWW 2018), batch mean."""
    return -(F.log_softmax(logits, dim=-1) * targets).sum(dim=-1).mean()


def _mask_special(scores):
    return scores.index_fill(-1, torch.arange(len(SPECIAL_ITEMS), device=scores.device), _MASKED)


# Next basket ---------------------------------------------------------------------------------


@dataclass
class NextBasketConfig:
    n_items: int = 0  # vocabulary size, padding and unknown entries included
    window: int = 5  # L: the last L baskets form the CNN's L x d "image"
    max_basket_size: int = 32  # items of a basket the CNN reads (the rest of a huge basket is dropped)
    embedding_dim: int = 32  # d: item embedding size
    horizontal_filters: int = 8  # filters for each height 1..L (union-level sequential patterns)
    vertical_filters: int = 4  # filters over the L baskets (point-level patterns)
    dropout: float = 0.5  # on the concatenated convolution features
    # The repeat component: TIFU-style time-decayed personal frequency of all past baskets.
    group_size: int = 7  # m: baskets per group
    within_decay: float = 0.9  # r_b: decay between baskets of a group
    across_decay: float = 0.7  # r_g: decay between groups

    @property
    def decay(self):
        return Decay(self.group_size, self.within_decay, self.across_decay)


class RepeatScore(nn.Module):
    """Scores of the items a shopper bought before: a shrunk re-buy rate, adjusted for recency.

    The rate is the Beta-binomial posterior mean (c_i + k m_i) / (n + k): c_i of the shopper's n
    baskets held item i; the prior m_i (what share of baskets re-buy the product, from its
    popularity and repeat share in data.item_statistics and a learned per-item bias) weighs as k
    pseudo-baskets. It only grows with c_i, so a shopper's staple always scores high, however rare
    the product. Recency adds w1 * (TIFU's time-decayed frequency / the shopper's top one), w1 >= 0,
    and w2 / (baskets since last bought). Only bought cells are computed.
    """

    def __init__(self, n_items, hidden=16):
        super().__init__()
        # From the product's statistics: the logit of m_i and the log of k_i.
        self.prior = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.raw_sharpness = nn.Parameter(torch.tensor(0.5))  # s = softplus(...): logit = s log(rate) + ...
        self.raw_decayed_weight = nn.Parameter(torch.tensor(0.0))  # w1 = softplus(...)
        self.recency_weight = nn.Parameter(torch.tensor(0.0))  # w2
        self.register_buffer("item_statistics", torch.zeros(n_items, 2))  # set from the training data

    def forward(self, x):
        """(B, V) logits over each shopper's bought items; _MASKED elsewhere."""
        rows, items = x.counts.nonzero(as_tuple=True)
        counts, recency = x.counts[rows, items], x.recency[rows, items]
        relative = x.history[rows, items] / x.history.amax(dim=1).clamp(min=1e-12)[rows]
        prior_logit, log_strength = self.prior(self.item_statistics[items]).unbind(1)
        prior = torch.sigmoid(prior_logit + self.item_bias[items])
        strength = torch.exp(log_strength.clamp(-5.0, 5.0))
        rate = (counts + strength * prior) / (x.n_baskets[rows] + strength)
        logits = (
            F.softplus(self.raw_sharpness) * torch.log(rate)
            + F.softplus(self.raw_decayed_weight) * relative
            + self.recency_weight / recency
        )
        return torch.full_like(x.history, _MASKED).index_put((rows, items), logits)


class NextBasketCNN(nn.Module):
    """Caser-style next-basket CNN (Tang & Wang, WSDM 2018) mixed with a repeat component.

    Each of the last L baskets becomes the mean of its item embeddings; horizontal filters of heights
    1..L (max-pooled over time) and vertical filters read that L x d image. The shopper is the
    frequency-weighted mean of an embedding of everything they bought (so new and anonymous
    shoppers need no user id). As in RepeatNet (Ren et al., AAAI 2019), a learned gate mixes two
    distributions: repeat (RepeatScore over the items bought before) and explore (the CNN's scores
    over the items never bought): p(i) = g p_repeat(i) + (1 - g) p_explore(i). Scores are log p(i).
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        L, d, V = config.window, config.embedding_dim, config.n_items
        if V <= len(SPECIAL_ITEMS) or L < 1:
            raise ValueError("a next-basket model needs at least one product and a window of at least one basket")
        self.item_embedding = nn.Embedding(V, d, padding_idx=PAD)
        self.horizontal = nn.ModuleList(nn.Conv2d(1, config.horizontal_filters, (h, d)) for h in range(1, L + 1))
        self.vertical = nn.Conv2d(1, config.vertical_filters, (L, 1))
        self.sequence = nn.Linear(config.horizontal_filters * L + config.vertical_filters * d, d)
        self.shopper = nn.Linear(V, d, bias=False)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * d, V)
        self.repeat = RepeatScore(V)
        self.gate = nn.Linear(2 * d + 2, 1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        nn.init.normal_(self.shopper.weight, std=0.1)
        with torch.no_grad():
            self.item_embedding.weight[PAD].zero_()

    def forward(self, x, targets=None):
        baskets, history = x.baskets, x.history
        present = (baskets != PAD).unsqueeze(-1).to(history.dtype)  # (B, L, S, 1)
        image = (self.item_embedding(baskets) * present).sum(2) / present.sum(2).clamp(min=1.0)  # (B, L, d)
        image = image.unsqueeze(1)  # (B, 1, L, d)
        horizontal = [F.relu(conv(image)).squeeze(3).amax(dim=2) for conv in self.horizontal]  # each (B, n_h)
        vertical = self.vertical(image).flatten(1)  # (B, n_v * d)
        sequence = F.relu(self.sequence(self.dropout(torch.cat(horizontal + [vertical], dim=1))))
        shopper = self.shopper(history / history.sum(1, keepdim=True).clamp(min=1e-8))
        hidden = torch.cat([sequence, shopper], dim=1)
        bought = x.counts > 0
        explore = _mask_special(self.output(hidden).masked_fill(bought, _MASKED))
        repeat = self.repeat(x)
        has_history = bought.any(dim=1, keepdim=True)
        gate_input = torch.cat([hidden, torch.log1p(x.n_baskets).unsqueeze(1), bought.sum(1, keepdim=True).log1p()], 1)
        gate = self.gate(gate_input).masked_fill(~has_history, _MASKED)  # logit of p(repeat)
        scores = torch.where(
            bought,
            F.logsigmoid(gate) + F.log_softmax(repeat, dim=1),
            F.logsigmoid(-gate) + F.log_softmax(explore, dim=1),
        )
        scores = _mask_special(scores)
        loss = None if targets is None else multinomial_nll(scores, targets)
        return scores, loss


# Autoencoder ---------------------------------------------------------------------------------


@dataclass
class AutoencoderConfig:
    n_items: int = 0  # vocabulary size, padding and unknown entries included
    hidden_dim: int = 200  # encoder and decoder hidden layer (Liang et al.: 600)
    latent_dim: int = 32  # the shopper embedding (Liang et al.: 200)
    dropout: float = 0.5  # input dropout: the "denoising"
    variational: bool = False  # True: Mult-VAE; False: Mult-DAE (as good here, in half the epochs)
    kl_cap: float = 0.002  # Mult-VAE's beta ceiling (Liang et al.: 0.2 for a loss summed over a whole
    # history; ours sums over one basket, ~50x fewer items, and 0.02 or more over-regularises)
    kl_anneal_steps: int = 2000  # updates for beta to climb from 0 to the cap
    # The input: the shopper's time-decayed personal frequency vector.
    group_size: int = 7  # m: baskets per group
    within_decay: float = 0.9  # r_b: decay between baskets of a group
    across_decay: float = 0.7  # r_g: decay between groups
    window: ClassVar[int] = 0  # reads no basket sequence, only the history vector
    max_basket_size: ClassVar[int] = 0

    @property
    def decay(self):
        return Decay(self.group_size, self.within_decay, self.across_decay)


class ShopperAutoencoder(nn.Module):
    """Mult-DAE / Mult-VAE (Liang et al., WWW 2018) over the shopper's item vector: "for you".

    It scores the products a shopper has never bought (bought ones are masked out, as Liang et al.
    mask the fold-in items) and learns from the new products of each next basket, given everything
    bought before it: discovery, where the next-basket model covers the repeats. The encoder's mean
    is the shopper embedding that segments are cut from.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        V, h, k = config.n_items, config.hidden_dim, config.latent_dim
        if V <= len(SPECIAL_ITEMS):
            raise ValueError("an autoencoder needs at least one product")
        self.encoder = nn.Sequential(nn.Linear(V, h), nn.Tanh(), nn.Linear(h, 2 * k if config.variational else k))
        self.decoder = nn.Sequential(nn.Linear(k, h), nn.Tanh(), nn.Linear(h, V))
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # drives the KL annealing

    def encode(self, x):
        history = x.history if hasattr(x, "history") else x
        inputs = self.dropout(F.normalize(history, dim=1))
        first, rest = self.encoder[0], self.encoder[1:]
        # A shopper bought a few products of many: the first layer reads only those (sparse x dense).
        hidden = rest(torch.sparse.mm(inputs.to_sparse(), first.weight.t()) + first.bias)
        if not self.config.variational:
            return hidden, None
        mean, log_variance = hidden.chunk(2, dim=1)
        return mean, log_variance

    def forward(self, x, targets=None):
        bought = (x.history if hasattr(x, "history") else x) > 0
        mean, log_variance = self.encode(x)
        z = mean
        if self.training and log_variance is not None:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        scores = _mask_special(self.decoder(z).masked_fill(bought, _MASKED))
        if targets is None:
            return scores, None
        loss = multinomial_nll(scores, targets * ~bought)
        if self.training and log_variance is not None:  # validation loss: the likelihood alone
            kl = -0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(1).mean()
            steps = max(self.config.kl_anneal_steps, 1)
            beta = self.config.kl_cap * min(1.0, self.updates.item() / steps)
            loss = loss + beta * kl
        if self.training:
            self.updates += 1
        return scores, loss

    @torch.no_grad()
    def embed(self, x):
        """The shopper embedding: the encoder's mean (no dropout, no sampling)."""
        was_training = self.training
        self.eval()
        mean, _ = self.encode(x)
        self.train(was_training)
        return mean


# Purchase propensity ----------------------------------------------------------------------------


@dataclass
class PropensityConfig:
    n_features: int = 0  # recency/frequency/monetary features (+ an embedding, optionally)
    hidden_dim: int = 0  # 0: logistic regression; > 0: one hidden ReLU layer of this size
    dropout: float = 0.1  # on the hidden layer
    horizon_days: int = 7  # N: the model says whether a shopper orders within N days


class PurchasePropensity(nn.Module):
    """Probability that a shopper orders within N days: logistic regression or a small MLP.

    Features are standardised with the training mean and spread, kept as buffers (and checkpointed).
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        n, h = config.n_features, config.hidden_dim
        if n < 1:
            raise ValueError("a propensity model needs at least one feature")
        layers = [nn.Linear(n, h), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(h, 1)] if h else [nn.Linear(n, 1)]
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("scale", torch.ones(n))

    def set_scaling(self, features):
        self.mean.copy_(features.mean(0))
        self.scale.copy_(features.std(0).nan_to_num(1.0).clamp(min=1e-6))

    def forward(self, x, targets=None):
        logits = self.net((x - self.mean) / self.scale).squeeze(-1)
        loss = None if targets is None else F.binary_cross_entropy_with_logits(logits, targets)
        return logits, loss

    @torch.no_grad()
    def probability(self, x):
        was_training = self.training
        self.eval()
        logits, _ = self(x)
        self.train(was_training)
        return torch.sigmoid(logits)


# Scoring ------------------------------------------------------------------------------------------

#: The layers as wide as the catalog, which hold nearly all of a network's weights.
CATALOG_LAYERS = {"NextBasketCNN": ("shopper", "output"), "ShopperAutoencoder": ("decoder.2",)}


def cpu_scorer(model):
    """The network for scoring shoppers on a CPU: a copy whose catalog-wide layers keep their weights
    in int8 (PyTorch's dynamic quantization; activations are quantized per call). Scoring one
    shopper reads the whole catalog's weights, so a quarter of the bytes makes it 5-20x faster;
    the scores move by about 1% of their range. The other layers are shared with `model`, not
    copied. `model` itself when it is not on a CPU, has no such layers, or the quantized engine fails."""
    names = CATALOG_LAYERS.get(type(model).__name__)
    if not names or next(model.parameters()).device.type != "cpu":
        return model
    try:
        with warnings.catch_warnings():  # PyTorch announces that this API moves to torchao
            warnings.simplefilter("ignore")
            scorer = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), set(names), dtype=torch.qint8)
    except Exception:  # an engine this build lacks
        logger.warning("Scoring with the float32 %s: dynamic quantization failed", type(model).__name__, exc_info=True)
        return model
    for name, child in model.named_children():
        if not any(layer == name or layer.startswith(name + ".") for layer in names):
            setattr(scorer, name, child)
    return scorer.eval()


@torch.no_grad()
def score_shoppers(model, sequences, users=None, batch_size=512):
    """Scores (len(users) x n_items) for each shopper's next basket, from all their baskets."""
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    config = model.config
    out = []
    for start in range(0, len(users), batch_size):
        x = model_inputs(
            sequences,
            users[start : start + batch_size],
            window=config.window,
            max_basket_size=config.max_basket_size,
            decay=config.decay,
        )
        scores, _ = model(x.to(device))
        out.append(scores.cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, config.n_items)


def score_session(model, items, previous_baskets=()):
    """Scores (n_items,) for completing a cart: `items` (the cart and viewed products, as item
    indices) is the latest step, after the shopper's `previous_baskets` (none for an anonymous one)."""
    baskets = [list(b) for b in previous_baskets] + [list(items)]
    vocabulary = _IndexOnlyVocabulary(model.config.n_items)
    return score_shoppers(model, BasketSequences.from_baskets([baskets], vocabulary))[0]


class _IndexOnlyVocabulary:
    """Stands in for a Vocabulary where only its size matters (scoring from item indices)."""

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size


@torch.no_grad()
def shopper_embeddings(model, sequences, users=None, batch_size=1024):
    """The autoencoder's embedding (len(users) x latent_dim) of each shopper's whole history."""
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    device = next(model.parameters()).device
    out = [
        model.embed(
            model_inputs(sequences, users[s : s + batch_size], window=0, max_basket_size=0, decay=model.config.decay)
            .history.to(device)
        ).cpu()
        for s in range(0, len(users), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, model.config.latent_dim)


# Segments --------------------------------------------------------------------------------------


def kmeans(points, k, seed=0, iterations=50):
    """Seeded k-means (k-means++ start, Lloyd steps) on the rows of `points`: (labels, centers)."""
    points = torch.as_tensor(points, dtype=torch.float32)
    n = len(points)
    if n == 0 or k < 1:
        raise ValueError("k-means needs at least one point and one cluster")
    k = min(k, n)
    generator = torch.Generator().manual_seed(seed)
    centers = points[torch.randint(n, (1,), generator=generator)]
    for _ in range(1, k):
        distance = torch.cdist(points, centers).pow(2).amin(dim=1)
        if distance.sum() <= 0:
            pick = torch.randint(n, (1,), generator=generator)
        else:
            pick = torch.multinomial(distance / distance.sum(), 1, generator=generator)
        centers = torch.cat([centers, points[pick]])
    labels = torch.cdist(points, centers).argmin(dim=1)
    for _ in range(iterations):
        sums = torch.zeros_like(centers).index_add_(0, labels, points)
        counts = torch.bincount(labels, minlength=k).unsqueeze(1)
        centers = torch.where(counts > 0, sums / counts.clamp(min=1), centers)
        new_labels = torch.cdist(points, centers).argmin(dim=1)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return labels, centers


def describe_segments(labels, sequences, item_categories, top=3):
    """Each segment's size and top categories: those whose share of the segment's purchases most
    exceeds their share of everyone's (with the share and the lift, share / overall share).

    `labels[u]` is shopper row u's segment; `item_categories[i]` the category of item index i.
    """
    labels = np.asarray(labels, dtype=np.int64)
    item_categories = np.asarray(item_categories, dtype=object)
    basket_user = np.repeat(np.arange(sequences.n_users), sequences.basket_counts)
    line_basket = np.repeat(np.arange(sequences.n_baskets), np.diff(sequences.basket_offsets))
    line_segment = labels[basket_user[line_basket]]
    names, codes = np.unique(item_categories[sequences.items].astype(str), return_inverse=True)
    n_segments = int(labels.max()) + 1 if len(labels) else 0
    table = np.zeros((n_segments, len(names)))
    np.add.at(table, (line_segment, codes), 1.0)
    overall = table.sum(0) / max(table.sum(), 1.0)
    segments = []
    for segment in range(n_segments):
        share = table[segment] / max(table[segment].sum(), 1.0)
        best = np.argsort(-(share - overall), kind="stable")[:top]
        segments.append(
            {
                "segment": segment,
                "shoppers": int((labels == segment).sum()),
                "top_categories": [
                    {"category": str(names[c]), "share": float(share[c]), "lift": float(share[c] / overall[c])}
                    for c in best
                    if share[c] > 0
                ],
            }
        )
    return segments


def segment_shoppers(model, sequences, item_categories, k=6, seed=0, top=3):
    """(labels, segments): k-means on the autoencoder's shopper embeddings, and each segment's size
    and top categories (describe_segments)."""
    labels, _ = kmeans(shopper_embeddings(model, sequences), k, seed)
    return labels.numpy(), describe_segments(labels.numpy(), sequences, item_categories, top)


MODEL_KINDS = {
    "next_basket_cnn": (NextBasketCNN, NextBasketConfig),
    "autoencoder": (ShopperAutoencoder, AutoencoderConfig),
    "propensity": (PurchasePropensity, PropensityConfig),
}


def kind_of(model):
    """The registry name of a model instance (the `kind` saved in checkpoints)."""
    for kind, (cls, _) in MODEL_KINDS.items():
        if type(model) is cls:
            return kind
    raise ValueError(f"unknown model class {type(model).__name__}")


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "NextBasketConfig",
    "NextBasketCNN",
    "RepeatScore",
    "AutoencoderConfig",
    "ShopperAutoencoder",
    "PropensityConfig",
    "PurchasePropensity",
    "multinomial_nll",
    "score_shoppers",
    "score_session",
    "shopper_embeddings",
    "kmeans",
    "describe_segments",
    "segment_shoppers",
    "MODEL_KINDS",
    "kind_of",
]
