"""Why a product is recommended: stable reason codes, and their text in the shopper's language.

Codes are cached and stored with the candidates; the text is written when a page is served, so
each shopper reads it in their own language.
"""
from django.utils.translation import gettext, gettext_noop, ngettext
from django.utils.translation import gettext_lazy as _

from personalization.models import Placement

Strategy = Placement.Strategy

REPEAT = "repeat"  # the shopper bought it before
VIEWED = "viewed"  # the shopper looked at it in this visit
BECAUSE_OFTEN_BOUGHT = "because_often_bought"  # like a product the shopper buys often
BECAUSE_BOUGHT = "because_bought"  # like a product the shopper bought
BECAUSE_VIEWED = "because_viewed"  # like a product the shopper looked at
WITH_CART = "with_cart"  # goes with a product in the cart
BOUGHT_TOGETHER = "bought_together"  # in the same orders as the page's product
SIMILAR = "similar"  # close to the page's product in the learned item space
TRENDING = "trending"
POPULAR = "popular"
FOR_YOU = "for_you"  # the model's choice, with nothing nameable behind it

CODES = (REPEAT, VIEWED, BECAUSE_OFTEN_BOUGHT, BECAUSE_BOUGHT, BECAUSE_VIEWED, WITH_CART, BOUGHT_TOGETHER, SIMILAR, TRENDING, POPULAR, FOR_YOU)

#: A heading for each strategy, when the placement sets none (by the strategy that filled it).
HEADINGS = {
    Strategy.FOR_YOU: _("Picked for you"),
    Strategy.NEXT_BASKET: _("For your next basket"),
    Strategy.BUY_AGAIN: _("Buy again"),
    Strategy.CART_COMPLETION: _("Don't forget"),
    Strategy.BOUGHT_TOGETHER: _("Often bought together"),
    Strategy.SIMILAR: _("Similar products"),
    Strategy.TRENDING: _("Trending this week"),
    Strategy.POPULAR: _("Popular right now"),
}


#: Sentences that name the product a reason refers to (translated when served: one lookup per item).
_ANCHORED = {
    BECAUSE_OFTEN_BOUGHT: gettext_noop("Because you often buy %(product)s"),
    BECAUSE_BOUGHT: gettext_noop("Because you bought %(product)s"),
    BECAUSE_VIEWED: gettext_noop("Because you looked at %(product)s"),
    WITH_CART: gettext_noop("Goes with %(product)s in your cart"),
    BOUGHT_TOGETHER: gettext_noop("Often bought with %(product)s"),
    SIMILAR: gettext_noop("Similar to %(product)s"),
}


def explain(reason, *, anchor_title="", count=0, category=""):
    """The sentence for a reason code; `anchor_title` names the product it refers to."""
    if reason == REPEAT:
        if count > 1:
            return ngettext("You have bought this %(count)d time", "You have bought this %(count)d times", count) % {
                "count": count
            }
        return gettext("You bought this before")
    if reason == VIEWED:
        return gettext("You looked at this recently")
    if anchor_title and reason in _ANCHORED:
        return gettext(_ANCHORED[reason]) % {"product": anchor_title}
    if reason == TRENDING:
        return gettext("Trending this week")
    if reason == POPULAR and category:
        return gettext("Popular in %(category)s") % {"category": category}
    if reason == POPULAR:
        return gettext("Popular with our shoppers")
    return gettext("Picked for you")


def heading(placement, strategy):
    """The placement's own heading, or the one of the strategy that filled it."""
    return placement.heading or str(HEADINGS.get(strategy, HEADINGS[Strategy.POPULAR]))
