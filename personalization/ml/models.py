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

from personalization.ml.batches import model_inputs
from personalization.ml.features import REPEAT_FEATURES, Decay, sparse_product
from personalization.ml.sequences import PAD, SPECIAL_ITEMS, BasketSequences

logger = logging.getLogger("personalization.ml")

# Scores of the padding and unknown entries: never recommended, finite so that 0 * log p stays 0.
_MASKED = -1e9
_REPEAT_SHARE = REPEAT_FEATURES.index("repeat_share")
_DECAYED_SHARE = REPEAT_FEATURES.index("decayed_share")
_TIFU_ALPHA = 0.7  # TIFU-KNN's weight of the shopper's own vector against the neighbours' (Hu et al.)
#: What the repeat score reads of the neighbours: their score over their largest and over the shopper's own largest.
NEIGHBOUR_FEATURES = ("neighbour_share", "neighbour_over_own", "log_tifu")


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
    explore_products: int = 10_000  # the explore distribution covers at most this many, the most bought
    neighbours: int = 50  # k: TIFU-KNN's nearest shoppers whose purchases inform the repeat score (0: none)
    max_pool_shoppers: int = 20_000  # the neighbours come from at most this many training shoppers
    pool_shoppers: int = 0  # set by training: the shoppers the neighbour pool holds
    pool_entries: int = 0  # set by training: their (shopper, product) entries
    # The repeat component: TIFU-style time-decayed personal frequency of all past baskets.
    group_size: int = 7  # m: baskets per group
    within_decay: float = 0.9  # r_b: decay between baskets of a group
    across_decay: float = 0.7  # r_g: decay between groups

    @property
    def decay(self):
        return Decay(self.group_size, self.within_decay, self.across_decay)


class CatalogSubset(nn.Module):
    """The products a network scores (or reads) when a catalog is too large to cover whole: the most
    bought ones, set by training. `position[i]` is product i's column among them, -1 outside."""

    def __init__(self, n_items, size):
        super().__init__()
        size = min(size, n_items - len(SPECIAL_ITEMS))
        self.register_buffer("items", torch.arange(len(SPECIAL_ITEMS), len(SPECIAL_ITEMS) + size))
        self.register_buffer("position", torch.full((n_items,), -1, dtype=torch.long))
        self.position[self.items] = torch.arange(size)

    def __len__(self):
        return len(self.items)

    def set(self, items):
        items = torch.as_tensor(items, dtype=torch.long, device=self.items.device)
        if items.shape != self.items.shape or (items < len(SPECIAL_ITEMS)).any() or len(items.unique()) != len(items):
            raise ValueError(f"a catalog subset here is {len(self.items)} distinct products")
        self.items.copy_(items)
        self.position.fill_(-1)[items] = torch.arange(len(items), device=items.device)


class NeighbourPool(nn.Module):
    """TIFU-KNN's neighbour score inside the network (Hu et al., SIGIR 2020): the mean time-decayed
    frequency vector of the k training shoppers most like this one (cosine similarity), a shopper
    never being their own neighbour (matched by sequences.shopper_keys). The training shoppers' vectors
    are buffers, kept sparse (by product), so a checkpoint serves without the training data."""

    def __init__(self, n_items, shoppers, entries, neighbours):
        super().__init__()
        self.n_items, self.neighbours = n_items, min(neighbours, shoppers)
        self.register_buffer("keys", torch.zeros(shoppers, dtype=torch.long))
        self.register_buffer("norms", torch.zeros(shoppers))
        # The (product, shopper, value) entries of the vectors, sorted by product, then shopper.
        self.register_buffer("items", torch.zeros(entries, dtype=torch.int32))
        self.register_buffer("shoppers", torch.zeros(entries, dtype=torch.int32))
        self.register_buffer("values", torch.zeros(entries))

    def fill(self, vectors, keys):
        """`vectors`: sparse COO (shoppers x n_items) time-decayed frequencies; `keys` their shopper keys."""
        by_item = vectors.t().coalesce()
        items, shoppers = by_item.indices()
        self.keys.copy_(torch.as_tensor(keys))
        self.norms.copy_(torch.zeros(len(self.keys)).index_add_(0, shoppers, by_item.values().pow(2)).sqrt())
        self.items.copy_(items)
        self.shoppers.copy_(shoppers)
        self.values.copy_(by_item.values())

    @torch.no_grad()
    def forward(self, x):
        """(B, n_items) dense: each shopper's neighbour score (0 without neighbours)."""
        n_rows, n_pool, k = len(x.n_baskets), len(self.keys), self.neighbours
        if k == 0 or len(x.rows) == 0:
            return torch.zeros(n_rows, self.n_items, device=x.weights.device)
        norms = torch.zeros(n_rows, device=x.weights.device).index_add(0, x.rows, x.weights.pow(2)).sqrt()
        query = _coo(x.rows, x.items, x.weights / norms[x.rows].clamp(min=1e-12), (n_rows, self.n_items))
        unit, vectors = self._matrices()
        similarity = sparse_product(query, unit).to_dense()
        similarity = similarity.masked_fill(x.keys[:, None] == self.keys[None, :], -torch.inf)
        nearest = similarity.topk(k, dim=1).indices
        picks = torch.zeros(n_pool, n_rows, device=nearest.device)
        picks[nearest, torch.arange(n_rows, device=nearest.device)[:, None]] = 1.0 / k
        # Sparse (products x pool) times dense (pool x B): several times faster than sparse x sparse.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse.mm(vectors, picks).t()

    def __getstate__(self):  # copies (copy.deepcopy, pickle) rebuild the matrices: CSR tensors do not copy
        state = self.__dict__.copy()
        state.pop("_matrices_cache", None)
        state.pop("_matrices_key", None)
        return state

    def _matrices(self):
        """(the pool's unit vectors, sparse COO products x pool; their plain vectors, CSR), built once
        until the buffers change (fill, load_state_dict, a move to another device)."""
        buffers = (self.items, self.shoppers, self.values, self.norms)
        key = tuple((b.data_ptr(), b._version) for b in buffers)
        if getattr(self, "_matrices_key", None) != key:
            items, shoppers, n_pool = self.items.long(), self.shoppers.long(), len(self.keys)
            unit = _coo(items, shoppers, self.values / self.norms[shoppers], (self.n_items, n_pool))
            crow = torch.cat([items.new_zeros(1), torch.bincount(items, minlength=self.n_items).cumsum(0)])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                vectors = torch.sparse_csr_tensor(crow, shoppers, self.values, (self.n_items, n_pool), check_invariants=False)
            self._matrices_cache, self._matrices_key = (unit, vectors), key
        return self._matrices_cache


def _coo(rows, columns, values, size):
    """A sparse COO matrix of entries already sorted by row, then column, without duplicates."""
    return torch.sparse_coo_tensor(torch.stack([rows, columns]), values, size, is_coalesced=True, check_invariants=False)


class RepeatScore(nn.Module):
    """Scores of the products a shopper bought before, from what data.repeat_features says of each
    (how often, how recently, whether it is due, in baskets and days) and of the product itself (its
    popularity and repeat share, data.item_statistics): a small MLP with a linear skip, plus a
    learned per-product bias. Only bought cells are computed."""

    def __init__(self, n_items, hidden=32):
        super().__init__()
        width = len(REPEAT_FEATURES) + 2 + len(NEIGHBOUR_FEATURES)
        self.linear = nn.Linear(width, 1)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("item_statistics", torch.zeros(n_items, 2))  # set from the training data
        with torch.no_grad():  # start from TIFU-KNN's ranking: logits proportional to the log of its scores
            self.linear.weight.zero_()
            self.linear.weight[0, -1] = 3.0

    def forward(self, x, neighbour_features):
        """(C,) a logit for each bought cell (x.rows[c], x.items[c])."""
        inputs = torch.cat([x.features, self.item_statistics[x.items], neighbour_features], dim=1)
        return (self.linear(inputs) + self.mlp(inputs)).squeeze(1) + self.item_bias[x.items]


class NextBasketCNN(nn.Module):
    """Caser-style next-basket CNN (Tang & Wang, WSDM 2018) mixed with a repeat component.

    Each of the last L baskets becomes the mean of its item embeddings; horizontal filters of heights
    1..L (max-pooled over time) and vertical filters read that L x d image. The shopper is the
    frequency-weighted mean of an embedding of everything they bought (so new and anonymous
    shoppers need no user id). As in RepeatNet (Ren et al., AAAI 2019), a learned gate mixes two
    distributions: repeat (RepeatScore over the items bought before) and explore (the CNN's scores
    over the most-bought products the shopper never bought, `explored`):
    p(i) = g p_repeat(i) + (1 - g) p_explore(i). Scores are log p(i); other products score _MASKED.

    Training reads only the bought cells and the explore products, never a catalog-wide row: with
    targets, forward returns the loss and no scores.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        L, d, V = config.window, config.embedding_dim, config.n_items
        if V <= len(SPECIAL_ITEMS) or L < 1:
            raise ValueError("a next-basket model needs at least one product and a window of at least one basket")
        self.explored = CatalogSubset(V, config.explore_products)
        self.item_embedding = nn.Embedding(V, d, padding_idx=PAD)
        self.horizontal = nn.ModuleList(nn.Conv2d(1, config.horizontal_filters, (h, d)) for h in range(1, L + 1))
        self.vertical = nn.Conv2d(1, config.vertical_filters, (L, 1))
        self.sequence = nn.Linear(config.horizontal_filters * L + config.vertical_filters * d, d)
        self.shopper = nn.EmbeddingBag(V, d, mode="sum")
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * d, len(self.explored))
        self.repeat = RepeatScore(V)
        self.neighbours = NeighbourPool(V, config.pool_shoppers, config.pool_entries, config.neighbours)
        self.gate = nn.Linear(2 * d + 3, 1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        nn.init.normal_(self.shopper.weight, std=0.1)
        with torch.no_grad():
            self.item_embedding.weight[PAD].zero_()

    def _convolutions(self, image):
        """Caser's horizontal and vertical convolutions of the (B, L, d) image, as matrix products
        over its windows (the same numbers as nn.Conv2d, several times faster on a CPU)."""
        B, L, d = image.shape
        features = []
        for h, conv in enumerate(self.horizontal, start=1):
            windows = image.unfold(1, h, 1).transpose(2, 3).reshape(B, L - h + 1, h * d)
            features.append(F.relu(F.linear(windows, conv.weight.flatten(1), conv.bias)).amax(dim=1))
        vertical = torch.einsum("bld,vl->bvd", image, self.vertical.weight.flatten(1)) + self.vertical.bias[:, None]
        return torch.cat(features + [vertical.flatten(1)], dim=1)

    def forward(self, x, targets=None):
        baskets = x.baskets
        present = (baskets != PAD).unsqueeze(-1).to(x.weights.dtype)  # (B, L, S, 1)
        image = (self.item_embedding(baskets) * present).sum(2) / present.sum(2).clamp(min=1.0)  # (B, L, d)
        sequence = F.relu(self.sequence(self.dropout(self._convolutions(image))))
        B = len(baskets)
        share = x.weights / torch.zeros(B, device=x.weights.device).index_add(0, x.rows, x.weights).clamp(min=1e-8)[x.rows]
        offsets = torch.searchsorted(x.rows, torch.arange(B, device=x.rows.device))
        shopper = self.shopper(x.items, offsets, per_sample_weights=share)
        hidden = torch.cat([sequence, shopper], dim=1)

        known = x.items >= len(SPECIAL_ITEMS)
        rows, items = x.rows[known], x.items[known]
        repeat = self.repeat(x, self._neighbour_features(x))[known]
        repeat_norm = _segment_logsumexp(repeat, rows, B)  # -inf for a shopper with no product
        has_history = torch.isfinite(repeat_norm)
        repeat_share = torch.zeros(B, device=x.rows.device).index_put((x.rows,), x.features[:, _REPEAT_SHARE])
        shopper_facts = torch.stack([torch.log1p(x.n_baskets), torch.bincount(rows, minlength=B).log1p(), repeat_share], 1)
        position = self.explored.position[items]
        explored = position >= 0
        explore_left = torch.bincount(rows[explored], minlength=B) < len(self.explored)
        gate = self.gate(torch.cat([hidden, shopper_facts], 1)).squeeze(1)  # the logit of p(repeat)
        gate = gate.masked_fill(~explore_left, -_MASKED).masked_fill(~has_history, _MASKED)
        repeat = F.logsigmoid(gate)[rows] + repeat - repeat_norm[rows]  # log p of each bought product
        explore = self.output(hidden).index_put((rows[explored], position[explored]), torch.tensor(_MASKED))
        explore = F.logsigmoid(-gate)[:, None] + F.log_softmax(explore, dim=1)  # (B, E)
        if targets is not None:
            return None, self._loss(rows, items, repeat, explore, targets)
        scores = torch.full((B, self.config.n_items), _MASKED, device=explore.device)
        scores[:, self.explored.items] = explore
        scores[rows, items] = repeat
        return scores, None

    def _neighbour_features(self, x):
        """(C, len(NEIGHBOUR_FEATURES)) of each bought cell."""
        scores = self.neighbours(x)
        B = len(scores)
        at_cells = scores[x.rows, x.items]
        own_largest = torch.zeros(B, device=scores.device).scatter_reduce(0, x.rows, x.weights, "amax", include_self=True)
        over_own = at_cells / own_largest.clamp(min=1e-12)[x.rows]
        tifu = _TIFU_ALPHA * x.features[:, _DECAYED_SHARE] + (1 - _TIFU_ALPHA) * over_own  # TIFU-KNN's score, scaled
        return torch.stack([at_cells / scores.amax(dim=1).clamp(min=1e-12)[x.rows], over_own, torch.log(tifu.clamp(min=1e-6))], 1)

    def _loss(self, rows, items, repeat, explore, targets):
        """Multinomial NLL of the target baskets, over the products the model can name: those the
        shopper bought before and the explore products (others are out of its reach)."""
        n_items = self.config.n_items
        cells = rows * n_items + items  # ascending: the input is sorted by row, then item
        wanted = targets.rows * n_items + targets.items
        found = torch.searchsorted(cells, wanted).clamp(max=max(len(cells) - 1, 0))
        bought = cells[found] == wanted if len(cells) else torch.zeros_like(wanted, dtype=torch.bool)
        position = self.explored.position[targets.items]
        log_p = torch.where(
            bought,
            repeat[found] if len(cells) else torch.zeros(len(wanted), device=wanted.device),
            explore[targets.rows, position.clamp(min=0)],
        )
        reachable = bought | (position >= 0)
        return -(log_p * reachable).sum() / max(len(targets), 1)


def _segment_logsumexp(values, rows, n_rows):
    """logsumexp of `values` per row (-inf for a row with none)."""
    top = torch.full((n_rows,), -torch.inf, device=values.device).scatter_reduce(0, rows, values.detach(), "amax")
    safe = top.clamp(min=-1e30)
    sums = torch.zeros(n_rows, device=values.device).index_add(0, rows, torch.exp(values - safe[rows]))
    return torch.log(sums) + safe


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
        """Logits of the products never bought (_MASKED elsewhere); with targets, the loss and no scores."""
        n_rows = len(x.n_baskets)
        columns = self.products.position[x.items]
        bought = torch.zeros(n_rows, len(self.products), dtype=torch.bool, device=x.rows.device)
        bought[x.rows[columns >= 0], columns[columns >= 0]] = True
        mean, log_variance = self.encode(x)
        z = mean
        if self.training and log_variance is not None:
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        logits = self.decoder(z).masked_fill(bought, _MASKED)
        if targets is None:
            scores = torch.full((n_rows, self.config.n_items), _MASKED, device=logits.device)
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
CATALOG_LAYERS = {"NextBasketCNN": ("output",), "ShopperAutoencoder": ("decoder.2",)}


def cpu_scorer(model):
    """The network for scoring shoppers on a CPU: a copy whose catalog-wide layers keep their weights
    in int8 (PyTorch's dynamic quantization). Scoring one shopper reads the whole catalog's weights,
    so a quarter of the bytes makes it 5-20x faster; the scores move by about 1% of their range.
    Dynamic quantization scales its input by the whole call's range, so each shopper goes through
    those layers alone (ShopperByShopper): a shopper's scores never depend on who else is in the
    batch. The other layers are shared with `model`, not copied. `model` itself when it is not on a
    CPU, has no such layers, or the quantized engine fails."""
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
    for name in names:
        parent, _, child = name.rpartition(".")
        holder = scorer.get_submodule(parent) if parent else scorer
        setattr(holder, child, ShopperByShopper(getattr(holder, child)))
    for name, child in model.named_children():
        if not any(layer == name or layer.startswith(name + ".") for layer in names):
            setattr(scorer, name, child)
    return scorer.eval()


class ShopperByShopper(nn.Module):
    """Runs `layer` on each shopper's rows (the first dimension) apart, so that what it computes for
    one shopper is the same in any batch."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        if x.dim() < 2 or len(x) == 1:
            return self.layer(x)
        return torch.cat([self.layer(row) for row in x.split(1)])


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
            features=getattr(config, "reads_repeat_features", True),
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
