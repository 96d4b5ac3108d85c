"""The shop's rules, on live data: which of a shortlist's candidates a placement may show now.

A product is shown only when it is live, in stock, and within the placement's categories and
prices, as the store's adapter reads it (personalization.serving.catalog: remembered between requests
only until a product changes), so a product that just sold out is not shown, whatever shortlist was cached.
"""
from personalization.adapters import get_adapter
from personalization.serving import catalog


def allowed(placement, product):
    """The shop's rules for one product (a ProductInfo): live, in stock, in the placement's categories and prices."""
    if not product.active or (product.stock is not None and product.stock <= 0):
        return False
    categories = {name.casefold() for name in product.every_category} or {""}
    if placement.included_categories and not categories & set(placement.included_categories):
        return False
    if categories & set(placement.excluded_categories):
        return False
    if product.price is not None:
        if placement.min_price is not None and product.price < placement.min_price:
            return False
        if placement.max_price is not None and product.price > placement.max_price:
            return False
    return True


def serve(placement, shortlist, *, product_id, exclude, limit, catalog_token=None):
    """[(candidate, product info, anchor info)] of the first `limit` candidates of a
    shortlists.Shortlist the rules allow, leaving out the page's product, `exclude` and (when the
    placement says so) the cart. `catalog_token`: the state's catalog token (None: read every product)."""
    skip = set(exclude) | {product_id} | (set(shortlist.cart) if placement.exclude_in_cart else set())
    queue = [candidate for candidate in shortlist.candidates if candidate.product_id not in skip]
    adapter, chosen, drafts = get_adapter(), [], {}
    start, step = 0, max(2 * limit, 12)
    while start < len(queue):
        chunk = queue[start : start + step]
        start, step = start + step, step * 2  # when the rules reject many, look further each time
        wanted = {c.product_id for c in chunk} | {c.anchor for c in chunk if c.anchor}
        fresh = catalog.product_drafts(adapter, wanted, catalog_token)  # URLs are built for the served products only
        drafts.update(fresh)
        products = {pid: draft.info for pid, draft in fresh.items()}
        for candidate in chunk:
            info = products.get(candidate.product_id)
            if info is not None and allowed(placement, info):
                anchor = products.get(candidate.anchor)
                chosen.append((candidate, info, anchor if anchor is not None and anchor.active else None))
                if len(chosen) == limit:
                    return _finished(adapter, drafts, chosen)
    return _finished(adapter, drafts, chosen)


def _finished(adapter, drafts, chosen):
    """The served products' ProductInfo complete (an anchor only lends its title)."""
    return [(candidate, adapter.finish_product(drafts[info.id]), anchor) for candidate, info, anchor in chosen]
