"""Scoped throttles, one pair per view: anonymous shoppers by address, signed-in shoppers by account.

A view names its scope (`throttle_scope = "personalization.events"`); the rates are
`REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["personalization.events.anon"]` and `...user`, and
default to DEFAULT_RATES, so a store that sets none still has limits.
"""
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from personalization.api.rates import DEFAULT_RATES
from personalization.cache import cache
from personalization.conf import settings


class ShopperThrottle(SimpleRateThrottle):
    """The rate of `<view.throttle_scope>.<audience>` for the shoppers of `audience`; others pass."""

    audience = None  # "anon" or "user"
    cache = cache  # with the cache down, requests are let through rather than answered 5xx

    def __init__(self):
        # The scope, and so the rate, is known only once the view is (see allow_request).
        pass

    def applies_to(self, request):
        signed_in = bool(request.user and request.user.is_authenticated)
        return signed_in == (self.audience == "user")

    def allow_request(self, request, view):
        if not self.applies_to(request):
            return True
        self.scope = f"{view.throttle_scope}.{self.audience}"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self):
        """The rate in settings (None there: no limit), else the default."""
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope in rates:
            return rates[self.scope]
        try:
            return DEFAULT_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"No throttle rate for {self.scope!r}: set REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'][{self.scope!r}]."
            ) from None

    def get_ident(self, request):
        """The client's address: REMOTE_ADDR, or behind PERSONALIZATION["TRUSTED_PROXIES"] = n proxies
        the address the outermost of them saw (n-th from the right in X-Forwarded-For). A header a
        client writes itself is never believed, so changing it buys no more requests."""
        remote = request.META.get("REMOTE_ADDR", "")
        proxies = settings.TRUSTED_PROXIES
        if not proxies:
            return remote
        forwarded = [address.strip() for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [address for address in forwarded if address]
        return forwarded[-proxies] if len(forwarded) >= proxies else remote

    def get_cache_key(self, request, view):
        ident = request.user.pk if self.audience == "user" else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonymousShopperThrottle(ShopperThrottle):
    audience = "anon"


class SignedInShopperThrottle(ShopperThrottle):
    audience = "user"


#: What every view of the API uses.
SHOPPER_THROTTLES = [AnonymousShopperThrottle, SignedInShopperThrottle]
