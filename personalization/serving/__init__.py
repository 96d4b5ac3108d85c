"""Serving: one pipeline from a placement, a shopper and an ask to recommendations (candidates, the
shop's rules, explanations, tracked links), with their caching and precomputing.
"""
