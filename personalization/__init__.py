"""Personalization for Django stores: events in, recommendations, cart predictions and coupons out."""

__version__ = "0.1.0"


def track(request_or_user, kind, product_id, quantity=1, **fields):
    """Record a shopper event from a store whose cart is not a model.

    `request_or_user` is an HttpRequest (signed-in or anonymous shopper) or a user.
    Returns whether the event was recorded (False: an opted-out shopper, a repeated view, or a
    failure, which is logged). Never raises.
    """
    from personalization.capture.events import record_for

    return record_for(request_or_user, kind, product_id, quantity=quantity, **fields)


def opt_out(user=None, session_key=""):
    """Stop personalizing for a shopper (a user, or an anonymous session's key): nothing more is
    recorded about them and they see what everyone sees, until opt_in()."""
    from personalization.capture import privacy

    return privacy.opt_out(user=user, session_key=session_key)


def opt_in(user=None, session_key=""):
    """Personalize again for a shopper who opted out."""
    from personalization.capture import privacy

    return privacy.opt_in(user=user, session_key=session_key)
