"""Personalization for Django stores: events in, recommendations, cart predictions and coupons out."""

__version__ = "0.1.0"


def track(request_or_user, kind, product_id, quantity=1, **fields):
    """Record a shopper event from a store whose cart is not a model.

    `request_or_user` is an HttpRequest (signed-in or anonymous shopper) or a user.
    Returns whether the event was recorded (False: an opted-out shopper, a repeated view, or a
    failure, which is logged). Never raises.
    """
    from personalization.events import record_for

    return record_for(request_or_user, kind, product_id, quantity=quantity, **fields)
