"""Promotions: which promotion a shopper sees in a slot (audience, holdout, frequency cap) and the lift
it earns.
"""
