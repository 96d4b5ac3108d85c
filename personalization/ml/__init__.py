"""The learning side of personalization: pure PyTorch + numpy + pandas, no Django.

data: order lines -> basket sequences, vocabulary, tensors. models: the next-basket CNN, the
shopper autoencoder, purchase propensity, k-means segments. baselines: popularity, personal
frequency, co-occurrence, TIFU-KNN. train: fit(). evaluate: leave-last-basket-out metrics and
predictions. checkpoint: save()/load().
"""

#: Version of the model code; checkpoints record it. Bump it when a model's inputs or layers change.
__version__ = "1.0"
