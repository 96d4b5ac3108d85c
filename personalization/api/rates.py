"""The API's default throttle rates (a plain module: settings files may import it without DRF)."""

DEFAULT_RATES = {
    "personalization.recommendations.anon": "120/min",
    "personalization.recommendations.user": "300/min",
    "personalization.cart_predictions.anon": "120/min",
    "personalization.cart_predictions.user": "300/min",
    "personalization.coupons.anon": "30/min",
    "personalization.coupons.user": "60/min",
    # Codes cannot be guessed (about 59 bits), but checking them needs no high rate either.
    "personalization.coupon_validation.anon": "10/min",
    "personalization.coupon_validation.user": "30/min",
    "personalization.events.anon": "300/min",
    "personalization.events.user": "600/min",
    "personalization.promotions.anon": "120/min",
    "personalization.promotions.user": "300/min",
    "personalization.promotion_clicks.anon": "120/min",
    "personalization.promotion_clicks.user": "300/min",
    "personalization.schema.anon": "30/min",
    "personalization.schema.user": "60/min",
}
