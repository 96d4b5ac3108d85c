"""What the networks share: the score of a product a network never names, the multinomial loss,
and the catalog subset a wide layer covers."""
import torch
import torch.nn.functional as F
from torch import nn

from personalization.ml.sequences import SPECIAL_ITEMS

#: Scores of the padding and unknown entries: never recommended, finite so that 0 * log p stays 0.
MASKED = -1e9


def multinomial_nll(logits, targets):
    """Multinomial log-likelihood loss over a multi-hot basket (Liang et al., WWW 2018), batch mean."""
    return -(F.log_softmax(logits, dim=-1) * targets).sum(dim=-1).mean()


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
