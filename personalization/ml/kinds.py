"""The networks a checkpoint can hold, by kind (the name saved in the checkpoint)."""
from personalization.ml.autoencoder import AutoencoderConfig, ShopperAutoencoder
from personalization.ml.next_basket import NextBasketCNN, NextBasketConfig
from personalization.ml.propensity import PropensityConfig, PurchasePropensity

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
