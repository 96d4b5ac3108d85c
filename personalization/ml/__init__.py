"""The learning side of personalization: pure PyTorch + numpy + pandas, no Django.

orders, sequences, features, batches: order lines -> basket sequences, a vocabulary, the features
and tensors the models read. next_basket, autoencoder (with k-means segments), propensity: the
networks; layers: what both networks use; scoring: score_shoppers, cpu_scorer; kinds: MODEL_KINDS.
baselines: popularity, personal frequency, co-occurrence, TIFU-KNN. related: co-purchase relations.
train: fit() within a time budget. evaluate, metrics, recommenders: leave-last-basket-out metrics.
checkpoint: save()/load().
"""

#: Version of the model code; checkpoints record it. Bump it when a model's inputs or layers change.
__version__ = "1.1"
