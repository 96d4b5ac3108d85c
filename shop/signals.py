"""Signals the store owns. `order_placed` is sent after the checkout transaction has committed."""
from django.dispatch import Signal

# Sent with `order` (a shop.Order whose lines exist) and `request` (or None).
order_placed = Signal()
