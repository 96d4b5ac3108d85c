"""Placements: the recommendation units a shop owner configures."""
__all__ = []
