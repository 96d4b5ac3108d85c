"""Products' facts for the shop's rules: read live through the store's adapter, and remembered in this
process while the catalog stands still.

    drafts = catalog.product_drafts(adapter, {"12", "40"}, token)   # {id: ProductDraft}

The facts (title, price, stock, active, categories, URL) are kept under the catalog token
(personalization.state), which a save or delete of any model the adapter names in catalog_models()
renews at once and when its transaction commits (capture.receivers.catalog_changed). Every request reads the
token with the shopper's state, so a product that sells out through a saved stock record is not
shown again by any process. Changes that send no signal (QuerySet.update(), raw SQL) are seen
within PRODUCT_FACTS_SECONDS; with 0, or an adapter that names no catalog models, or no token (the
cache is down), every request reads its products live.
"""
import time

from personalization.adapters import url_context
from personalization.cache import ProcessMemo
from personalization.conf import settings

#: Products remembered per process at most, the least recently used forgotten first (each entry
#: holds the product's row: about a kilobyte with a short description, so at most about 50 MB).
#: bench/serve.py (50,000 products): 20,000 served 0.476 x the trivial endpoint, 50,000 0.529.
MAX_PRODUCTS = 50_000

_remembered = ProcessMemo(MAX_PRODUCTS)


def product_drafts(adapter, product_ids, token):
    """{id: ProductDraft} of the products `product_ids` that exist: remembered ones still fresh under
    `token` (None: none), the others read through `adapter` in one call."""
    seconds = settings.PRODUCT_FACTS_SECONDS
    if token is None or not seconds or not adapter.catalog_models():
        return adapter.product_drafts(product_ids)
    context, now = url_context(), time.monotonic()  # a product's URL depends on the context
    found, missing = {}, []
    for pid in product_ids:
        entry = _remembered.get((token, context, pid))
        if entry is not None and now - entry[0] < seconds:
            found[pid] = entry[1]
        else:
            missing.append(pid)
    if missing:
        fresh = adapter.product_drafts(missing)
        for pid, draft in fresh.items():
            _remembered.put((token, context, pid), (now, draft))
        found.update(fresh)
    return found


def forget():
    """Forgets every remembered product in this process (tests; a new catalog token makes the others unreachable)."""
    _remembered.clear()
