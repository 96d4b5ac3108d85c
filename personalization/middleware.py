"""ShopperMiddleware: names the shopper of cart changes whose cart has no owner column.

Some stores (django-oscar) find an anonymous shopper's cart through a cookie, so a cart line
alone does not say whose it is. While a request is served, the receivers take its shopper (the
signed-in user, or the session, created when needed). Put it after AuthenticationMiddleware and
before the store's own cart middleware.
"""
import contextvars

_request = contextvars.ContextVar("personalization_request", default=None)


def current_request():
    """The request being served in this thread or task, or None outside a request."""
    return _request.get()


class ShopperMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
