"""The coupon banner for the `personalization` tag library (registered there as `{% personalized_coupon %}`).

    {% personalized_coupon %}                 the signed-in shopper's coupon expiring first
    {% personalized_coupon cart_total=total %}  the one taking most off this cart, and how much

Renders personalization/coupon.html (a store may override it); nothing for anonymous shoppers,
shoppers without a coupon, and shoppers who opted out. Never raises into the page.
"""
import logging
from decimal import Decimal

from personalization import coupons

logger = logging.getLogger("personalization.templatetags")


def personalized_coupon(context, cart_total=None):
    """The context of personalization/coupon.html for the shopper of the page's request."""
    request = context.get("request")
    try:
        user = getattr(request, "user", None) or context.get("user")
        coupon = coupons.coupon_for(user, cart_total)
        campaign = coupon.campaign if coupon else None
        amount = None
        if campaign is not None and cart_total is not None:  # a cart_total coupon_for could read
            total = Decimal(str(cart_total))
            amount = campaign.discount_for(total) if total >= campaign.min_cart_total else None
    except Exception:
        logger.exception("The coupon banner failed; the page shows none")
        coupon = campaign = amount = None
    return {"coupon": coupon, "campaign": campaign, "amount": amount, "cart_total": cart_total, "request": request}
