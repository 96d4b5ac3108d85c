"""The store's own signal handlers."""
from django.conf import settings

from shop import cart


def merge_cart_on_login(sender, request, user, **kwargs):
    """Moves the anonymous shopper's cart into the account they just signed in to.

    login() has already cycled the session key; the cookie sent with the login request
    still holds the key the anonymous cart was created under.
    """
    if request is None:
        return
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if session_key:
        cart.merge_session_cart(session_key, user)
