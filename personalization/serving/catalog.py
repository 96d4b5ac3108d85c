"""Products' facts for the shop's rules: read live through the store's adapter, and remembered in this
process while the catalog stands still.

    drafts = catalog.product_drafts(adapter, {"12", "40"}, token)   # {id: ProductDraft}

The facts (title, price, stock, active, categories, URL) are kept under the catalog token
(personalization.state), which a save or delete of any model the adapter names in catalog_models()
renews when its transaction commits (capture.receivers.catalog_changed). Every request reads the
token with the shopper's state, so a product that sells out through a saved stock record is not
shown again by any process. Changes that send no signal (QuerySet.update(), raw SQL) are seen
within PRODUCT_FACTS_SECONDS; with 0, or an adapter that names no catalog models, or no token (the
cache is down), every request reads its products live.
"""
import threading
import time

from personalization.adapters import url_context
from personalization.conf import settings

#: Products remembered per process at most; past it, the memory starts over.
MAX_PRODUCTS = 50_000


class _Remembered:
    """{(url context, product id): (read at, ProductDraft)} under one catalog token."""

    def __init__(self):
        self.token, self.entries, self.lock = None, {}, threading.Lock()

    def under(self, token):
        """The entries kept under `token` (a new token forgets the others)."""
        with self.lock:
            if token != self.token or len(self.entries) > MAX_PRODUCTS:
                self.token, self.entries = token, {}
            return self.entries


_remembered = _Remembered()


def product_drafts(adapter, product_ids, token):
    """{id: ProductDraft} of the products `product_ids` that exist: remembered ones still fresh under
    `token` (None: none), the others read through `adapter` in one call."""
    seconds = settings.PRODUCT_FACTS_SECONDS
    if token is None or not seconds or not adapter.catalog_models():
        return adapter.product_drafts(product_ids)
    entries, context, now = _remembered.under(token), url_context(), time.monotonic()  # URLs depend on it
    found, missing = {}, []
    for pid in product_ids:
        entry = entries.get((context, pid))
        if entry is not None and now - entry[0] < seconds:
            found[pid] = entry[1]
        else:
            missing.append(pid)
    if missing:
        fresh = adapter.product_drafts(missing)
        entries.update({(context, pid): (now, draft) for pid, draft in fresh.items()})
        found.update(fresh)
    return found


def forget():
    """Forgets every remembered product in this process (tests; a catalog token renewal does it for all)."""
    _remembered.under(object())

