"""Personalized coupons for the store's checkout: the only coupon functions a store calls.

    from personalization import coupons

    discount = coupons.validate(code, request.user, cart_total, cart_categories)   # show it
    discount = coupons.redeem(code, user, order.pk, cart_total, cart_categories)   # in the order's transaction

Both return a `Discount` (its `amount` is what to take off) or raise a `CouponError` whose text is
the message for the shopper. They never raise anything else: if the plugin itself fails, the
failure is logged and `CouponUnavailable` is raised, so the store can go on without a discount.
"""
import logging

from django.db import transaction

from personalization.coupons import codes as _service
from personalization.coupons.codes import (
    BelowMinimum,
    BudgetExhausted,
    CouponError,
    CouponExpired,
    CouponUnavailable,
    CouponUsed,
    Discount,
    NotYourCoupon,
    OfferEnded,
    UnknownCoupon,
    WrongCategories,
)

logger = logging.getLogger("personalization.coupons")


def validate(code, user, cart_total, cart_categories=()):
    """The Discount `code` gives `user` on a cart worth `cart_total` with products of the categories
    named in `cart_categories`; raises CouponError (with the shopper's message) when it does not apply."""
    try:
        return _service.validate(code, user, cart_total, cart_categories)
    except CouponError:
        raise
    except Exception as exc:
        logger.exception("Could not check coupon %r; the store carries on without it", code)
        raise CouponUnavailable() from exc


def redeem(code, user, order_id, cart_total, cart_categories=()):
    """Uses `code` for order `order_id` and returns its Discount; call it inside the transaction that
    creates the order, so that a failed order leaves the coupon unused. Raises CouponError when the
    coupon does not apply (or is being used at the same moment), CouponUnavailable when the plugin
    failed; either way nothing of the coupon has changed and the order's transaction can go on."""
    try:
        with transaction.atomic():  # a savepoint: a database error here leaves the order's transaction usable
            return _service.redeem(code, user, order_id, cart_total, cart_categories)
    except CouponError:
        raise
    except Exception as exc:
        logger.exception("Could not redeem coupon %r for order %s; the order goes on without it", code, order_id)
        raise CouponUnavailable() from exc


def coupon_for(user, cart_total=None):
    """The shopper's best coupon to show (a personalization.models.Coupon), or None; never raises."""
    try:
        return _service.coupon_for(user, cart_total)
    except Exception:
        logger.exception("Could not look up the coupons of user %s", getattr(user, "pk", None))
        return None


__all__ = [
    "validate",
    "redeem",
    "coupon_for",
    "Discount",
    "CouponError",
    "UnknownCoupon",
    "NotYourCoupon",
    "CouponUsed",
    "CouponExpired",
    "OfferEnded",
    "BelowMinimum",
    "WrongCategories",
    "BudgetExhausted",
    "CouponUnavailable",
]
