"""Which recommendation led to a cart addition or a purchase.

A tracked click (`personalization:click`) remembers, per shopper, the recommendation each clicked
product came from, for ATTRIBUTION_SECONDS in Django's cache; the shopper's next `cart_add` and
`purchase` events of that product then carry its `recommendation_id`. A purchase uses the memory
up. Serve several processes from one shared cache (Redis) so a click and the cart that follows it
meet.
"""
import functools
import hmac
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

from personalization import state
from personalization.cache import cache
from personalization.models import EventKind

logger = logging.getLogger("personalization.capture.attribution")

#: How long after a click an addition to the cart or a purchase is credited to it.
ATTRIBUTION_SECONDS = 7 * 24 * 60 * 60
#: Clicked products remembered per shopper (the oldest are forgotten first).
REMEMBERED_CLICKS = 50
ATTRIBUTED_KINDS = frozenset({EventKind.CART_ADD, EventKind.PURCHASE})
_SALT = "personalization.click"
#: How long a click link counts as a click: an older one (a bookmark, a shared link) still leads to
#: its product but records nothing.
CLICK_LINK_SECONDS = 2 * 24 * 60 * 60


@dataclass(frozen=True)
class Click:
    recommendation_id: str
    product_id: str
    placement: str


def new_recommendation_id(shopper):
    """A fresh recommendation id (32 hex digits) that itself proves whom it was shown to: 16 random
    digits and 16 of an HMAC of them with the shopper, so no cache or table is needed to check it."""
    nonce = secrets.token_hex(8)
    return nonce + _issued_mac(nonce, _identity(shopper))


def issued_to(recommendation_id, shopper):
    """True when `recommendation_id` was made by new_recommendation_id for `shopper`, or for a
    visitor without a session yet (who gets one with their first event)."""
    nonce, mac = recommendation_id[:16], recommendation_id[16:]
    return any(hmac.compare_digest(mac, _issued_mac(nonce, who)) for who in {_identity(shopper), ""})


def _identity(shopper):
    if shopper.user_id:
        return f"u{shopper.user_id}"
    return f"s{shopper.session_key}" if shopper.session_key else ""


def _issued_mac(nonce, identity):
    return salted_hmac("personalization.recommendation", f"{nonce}:{identity}", algorithm="sha256").hexdigest()[:16]


def click_token(recommendation_id, product_id, placement):
    """A signed token naming a shown product: click URLs carry it, so nobody can forge a click
    for a recommendation that was never shown, or point the redirect elsewhere."""
    # Not compressed: zlib does not shorten a payload this small (a 32-hex id, a product id, a slug;
    # only long repetitive ids), and trying costs a third of the signing. Compressed tokens still load.
    return _click_signer(settings.SECRET_KEY).sign_object([recommendation_id, str(product_id), placement])


@functools.lru_cache(maxsize=1)
def _click_signer(secret):
    """Signs as signing.dumps(value, salt=_SALT, compress=False) does (signing.loads reads its tokens),
    one signer per secret key. Public API only: re-deriving the HMAC key per token costs about 2 us
    (12.6 us a token against 10.5 us with a key derived once, on the shared machine): 16 us a page."""
    return signing.TimestampSigner(key=secret, salt=_SALT)


def read_click_token(token):
    """The Click a token names; raises signing.BadSignature for a token we did not sign, and
    signing.SignatureExpired (a BadSignature) for one older than CLICK_LINK_SECONDS."""
    recommendation_id, product_id, placement = signing.loads(token, salt=_SALT, max_age=CLICK_LINK_SECONDS)
    return Click(str(recommendation_id), str(product_id), str(placement))


def product_of_click_token(token):
    """The product id a token we signed names, however old (an expired link still leads to its product)."""
    return str(signing.loads(token, salt=_SALT)[1])


def remember_click(user_id, session_key, product_id, recommendation_id):
    """Credits the shopper's next cart addition and purchase of `product_id` to `recommendation_id`."""
    if not (user_id or session_key):
        return
    key = state.clicks_key(user_id, session_key)
    try:
        clicks = cache.get(key) or {}
        clicks.pop(str(product_id), None)
        clicks[str(product_id)] = recommendation_id
        cache.set(key, dict(list(clicks.items())[-REMEMBERED_CLICKS:]), ATTRIBUTION_SECONDS)
    except Exception:
        logger.exception("Could not remember the click on product %s", product_id)


def attribute(events):
    """Sets `recommendation_id` on the cart_add and purchase Events (unsaved instances) that follow
    a remembered click. Never raises: an event without attribution is still an event."""
    try:
        pending = [e for e in events if e.kind in ATTRIBUTED_KINDS and not e.recommendation_id]
        if not pending:
            return
        keys = {state.clicks_key(e.user_id, e.session_key) for e in pending}
        memory = cache.get_many(list(keys))
        if not memory:
            return
        used = set()
        for event in pending:
            key = state.clicks_key(event.user_id, event.session_key)
            recommendation_id = memory.get(key, {}).get(event.product_id)
            if recommendation_id:
                event.recommendation_id = recommendation_id
                if event.kind == EventKind.PURCHASE:
                    used.add((key, event.product_id))
        if used:
            for key, product_id in used:
                memory[key].pop(product_id, None)
            cache.set_many({key: memory[key] for key, _ in used}, ATTRIBUTION_SECONDS)
    except Exception:
        logger.exception("Could not attribute %d event(s) to recommendations", len(events))


def merge(session_keys, user_id):
    """Moves the clicks an anonymous shopper made to the account they logged in to."""
    try:
        sessions = [state.clicks_key(None, key) for key in session_keys if key]
        found = cache.get_many(sessions)
        if not found:
            return
        user_key = state.clicks_key(user_id, "")
        clicks = cache.get(user_key) or {}
        for session_clicks in found.values():
            clicks.update(session_clicks)
        cache.set(user_key, dict(list(clicks.items())[-REMEMBERED_CLICKS:]), ATTRIBUTION_SECONDS)
        cache.delete_many(list(found))
    except Exception:
        logger.exception("Could not move the clicks of sessions %s to user %s", session_keys, user_id)
