"""The shopper autoencoder (Mult-DAE / Mult-VAE) over each shopper's history, its shopper
embeddings, and the k-means segments cut from them.

Built from AutoencoderConfig (kept on the model and saved in every checkpoint) with
`forward(x, targets=None) -> (scores, loss)`; loss only when targets are given.
"""
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from personalization.ml.batches import model_inputs
from personalization.ml.features import Decay
from personalization.ml.layers import MASKED, CatalogSubset, multinomial_nll
from personalization.ml.sequences import SPECIAL_ITEMS


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
    products: int = 10_000  # reads and scores at most this many products, the most bought
    # The input: the shopper's time-decayed personal frequency vector.
    group_size: int = 7  # m: baskets per group
    within_decay: float = 0.9  # r_b: decay between baskets of a group
    across_decay: float = 0.7  # r_g: decay between groups
    window: ClassVar[int] = 0  # reads no basket sequence, only the history vector
    max_basket_size: ClassVar[int] = 0
    reads_repeat_features: ClassVar[bool] = False

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
        self.products = CatalogSubset(V, config.products)
        P = len(self.products)
        self.encoder = nn.Sequential(nn.Linear(P, h), nn.Tanh(), nn.Linear(h, 2 * k if config.variational else k))
        self.decoder = nn.Sequential(nn.Linear(k, h), nn.Tanh(), nn.Linear(h, P))
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # drives the KL annealing

    def encode(self, x):
        """(mean, log variance or None) of the shoppers of a data.NextBasketInput."""
        n_rows = len(x.n_baskets)
        columns = self.products.position[x.items]
        read = columns >= 0
        rows, columns, weights = x.rows[read], columns[read], x.weights[read]
        norms = torch.zeros(n_rows, device=weights.device).index_add(0, rows, weights.pow(2)).sqrt()
        values = self.dropout(weights / norms[rows].clamp(min=1e-12))
        inputs = torch.sparse_coo_tensor(torch.stack([rows, columns]), values, (n_rows, len(self.products)), check_invariants=False)
        first, rest = self.encoder[0], self.encoder[1:]
        # A shopper bought a few products of many: the first layer reads only those (sparse x dense).
        hidden = rest(torch.sparse.mm(inputs, first.weight.t()) + first.bias)
        if not self.config.variational:
            return hidden, None
        mean, log_variance = hidden.chunk(2, dim=1)
        return mean, log_variance

    def forward(self, x, targets=None):
        """Logits of the products never bought (MASKED elsewhere); with targets, the loss and no scores."""
        n_rows = len(x.n_baskets)
        columns = self.products.position[x.items]
        bought = torch.zeros(n_rows, len(self.products), dtype=torch.bool, device=x.rows.device)
        bought[x.rows[columns >= 0], columns[columns >= 0]] = True
        mean, log_variance = self.encode(x)
        z = mean
        if self.training and log_variance is not None:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        logits = self.decoder(z).masked_fill(bought, MASKED)
        if targets is None:
            scores = torch.full((n_rows, self.config.n_items), MASKED, device=logits.device)
            scores[:, self.products.items] = logits
            return scores, None
        wanted = torch.zeros_like(logits)
        columns = self.products.position[targets.items]
        wanted[targets.rows[columns >= 0], columns[columns >= 0]] = 1.0
        loss = multinomial_nll(logits, wanted * ~bought)
        if self.training and log_variance is not None:  # validation loss: the likelihood alone
            kl = -0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(1).mean()
            steps = max(self.config.kl_anneal_steps, 1)
            beta = self.config.kl_cap * min(1.0, self.updates.item() / steps)
            loss = loss + beta * kl
        if self.training:
            self.updates += 1
        return None, loss

    @torch.no_grad()
    def embed(self, x):
        """The shopper embedding: the encoder's mean (no dropout, no sampling)."""
        was_training = self.training
        self.eval()
        mean, _ = self.encode(x)
        self.train(was_training)
        return mean


@torch.no_grad()
def shopper_embeddings(model, sequences, users=None, batch_size=1024):
    """The autoencoder's embedding (len(users) x latent_dim) of each shopper's whole history."""
    users = np.arange(sequences.n_users) if users is None else np.asarray(users, dtype=np.int64)
    device = next(model.parameters()).device
    out = [
        model.embed(
            model_inputs(
                sequences, users[s : s + batch_size], window=0, max_basket_size=0, decay=model.config.decay, features=False
            ).to(device)
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
