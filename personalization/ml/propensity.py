"""Purchase propensity: the probability that a shopper orders within N days, from
recency/frequency/monetary features (features.shopper_features)."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


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
