"""Personalized coupons: campaigns and the coupons they issue."""
__all__ = []
