"""Purchase propensity judged on held-out shoppers: test AUC, with one-feature heuristics and
rival models scored on the same shoppers. Pure torch + numpy + pandas (no Django)."""
import numpy as np
import torch

from personalization.ml.metrics import roc_auc
from personalization.ml.orders import prepare_frame
from personalization.ml.train import propensity_data, train_propensity


def evaluate_propensity(frame, horizon_days=7, seed=0, test_share=0.25, model_config=None, train_config=None, rivals=None):
    """Test AUC of purchase propensity ("orders within horizon_days") on held-out shoppers.

    Features are taken `horizon_days` before the last order in the data and labels from the days
    after; a random `test_share` of shoppers is held out. Also reports two one-feature heuristics:
    recency (fewer days since the last order: likelier) and overdue (days since the last order over
    the shopper's mean days between orders: likelier when higher), and the share of buyers.
    `rivals` ({name: fitted PurchasePropensity}) are scored on the same held-out shoppers as
    "<name>_auc" (training judges the active version this way).
    """
    lines = prepare_frame(frame)
    features, labels = propensity_data(lines, horizon_days)
    held = np.random.default_rng(seed).random(len(features)) < test_share
    if labels[held].nunique() < 2 or labels[~held].nunique() < 2:
        raise ValueError("too few shoppers, or all alike, to evaluate purchase propensity")
    result = train_propensity(features[~held], labels[~held], model_config, train_config)
    x = torch.from_numpy(features[held].to_numpy(dtype=np.float32, copy=True))
    probability = result.model.probability(x).numpy()
    rival_aucs = {
        f"{name}_auc": roc_auc(labels[held], model.probability(x).numpy())
        for name, model in (rivals or {}).items()
        if model.config.n_features == x.shape[1]  # a model of other features cannot be judged here
    }
    return {
        **rival_aucs,
        "auc": roc_auc(labels[held], probability),
        "recency_auc": roc_auc(labels[held], -features.loc[held, "days_since_last_order"].to_numpy()),
        "overdue_auc": roc_auc(labels[held], features.loc[held, "recency_over_rhythm"].to_numpy()),
        "buyer_share": float(labels.mean()),
        "test_shoppers": int(held.sum()),
        "train_shoppers": int((~held).sum()),
        "horizon_days": horizon_days,
    }
