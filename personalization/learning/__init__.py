"""Learning: the store's events as frames, each model kind fitted and gated against the active version
and the baselines, published to the registry; the offline evaluation.
"""
