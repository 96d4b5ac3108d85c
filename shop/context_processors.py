"""Template context the store's pages share."""
from django.utils.functional import SimpleLazyObject

from shop import cart as shop_cart


def cart(request):
    """`cart_count`: items in the shopper's cart, counted only if a template shows it."""
    return {"cart_count": SimpleLazyObject(lambda: shop_cart.count_items(request))}
