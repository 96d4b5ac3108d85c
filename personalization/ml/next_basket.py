"""The next-basket network: a Caser-style CNN over the latest baskets mixed with a repeat score
that reads the shopper's repeat features and TIFU-KNN's neighbours (NeighbourPool).

Built from NextBasketConfig (kept on the model and saved in every checkpoint) with
`forward(x, targets=None) -> (scores, loss)`; loss only when targets are given. x is a
batches.NextBasketInput (batches.model_inputs); scoring.score_shoppers scores whole shoppers.
"""
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from personalization.ml.features import REPEAT_FEATURES, Decay, sparse_product
from personalization.ml.layers import MASKED, CatalogSubset
from personalization.ml.sequences import PAD, SPECIAL_ITEMS

_REPEAT_SHARE = REPEAT_FEATURES.index("repeat_share")
_DECAYED_SHARE = REPEAT_FEATURES.index("decayed_share")
_TIFU_ALPHA = 0.7  # TIFU-KNN's weight of the shopper's own vector against the neighbours' (Hu et al.)
#: What the repeat score reads of the neighbours: their score over their largest and over the shopper's own largest.
NEIGHBOUR_FEATURES = ("neighbour_share", "neighbour_over_own", "log_tifu")


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
    p(i) = g p_repeat(i) + (1 - g) p_explore(i). Scores are log p(i); other products score MASKED.

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
        gate = gate.masked_fill(~explore_left, -MASKED).masked_fill(~has_history, MASKED)
        repeat = F.logsigmoid(gate)[rows] + repeat - repeat_norm[rows]  # log p of each bought product
        explore = self.output(hidden).index_put((rows[explored], position[explored]), torch.tensor(MASKED))
        explore = F.logsigmoid(-gate)[:, None] + F.log_softmax(explore, dim=1)  # (B, E)
        if targets is not None:
            return None, self._loss(rows, items, repeat, explore, targets)
        scores = torch.full((B, self.config.n_items), MASKED, device=explore.device)
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
