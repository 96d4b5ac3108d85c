"""The shop's rules, on live data: which of a shortlist's candidates a placement may show now.

A product is shown only when it is live, in stock, and within the placement's categories and
prices, read through the store's adapter on every request, so a product that just sold out is
never shown, whatever was cached.
"""
from dataclasses import replace

from personalization.adapters import get_adapter
from personalization.services import explanations

_FAVOURITE_REASONS = (explanations.BECAUSE_BOUGHT, explanations.BECAUSE_OFTEN_BOUGHT)


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


def serve(placement, shortlist, *, product_id, exclude, limit):
    """[(candidate, product info, anchor info)] of the first `limit` candidates of a
    shortlists.Shortlist the rules allow, leaving out the page's product, `exclude` and (when the
    placement says so) the cart."""
    skip = set(exclude) | {product_id} | (set(shortlist.cart) if placement.exclude_in_cart else set())
    queue = [candidate for candidate in shortlist.candidates if candidate.product_id not in skip]
    adapter, chosen, drafts = get_adapter(), [], {}
    start, step = 0, max(2 * limit, 12)
    while start < len(queue):
        chunk = queue[start : start + step]
        start, step = start + step, step * 2  # when the rules reject many, look further each time
        wanted = {c.product_id for c in chunk} | {c.anchor for c in chunk if c.anchor}
        if any(c.reason in _FAVOURITE_REASONS for c in chunk):
            wanted |= {p for p, _ in shortlist.favourites}
        fresh = adapter.product_drafts(wanted)  # URLs are built for the served products only
        drafts.update(fresh)
        products = {pid: draft.info for pid, draft in fresh.items()}
        for candidate in chunk:
            info = products.get(candidate.product_id)
            if info is not None and allowed(placement, info):
                candidate = _same_shelf_anchor(candidate, info, shortlist.favourites, products)
                anchor = products.get(candidate.anchor)
                chosen.append((candidate, info, anchor if anchor is not None and anchor.active else None))
                if len(chosen) == limit:
                    return _finished(adapter, drafts, chosen)
    return _finished(adapter, drafts, chosen)


def _finished(adapter, drafts, chosen):
    """The served products' ProductInfo complete (an anchor only lends its title)."""
    return [(candidate, adapter.finish_product(drafts[info.id]), anchor) for candidate, info, anchor in chosen]


def _same_shelf_anchor(candidate, product, favourites, products):
    """A discovery explained by a favourite names, when it can, the favourite from the same
    category ("Because you often buy Italian Chickpeas" for other chickpeas): clearer to shoppers
    than the model's closest item."""
    if candidate.reason not in _FAVOURITE_REASONS or not product.category:
        return candidate
    for favourite, orders in favourites:
        info = products.get(favourite)
        if info is not None and info.category == product.category and favourite != product.id:
            reason = explanations.BECAUSE_OFTEN_BOUGHT if orders > 1 else explanations.BECAUSE_BOUGHT
            return replace(candidate, anchor=favourite, reason=reason)
    return candidate
